import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lockViolationMessage } from '../../workflows/lock-violation-message';

describe('lockViolationMessage', () => {
  const paths = (n: number) => Array.from({ length: n }, (_, i) => `lib/${'d'.repeat(60)}/${i}.ts`);

  it('names the first 20 of 1,000 files outside the locks and counts the rest, with those the history left out', () => {
    const message = lockViolationMessage({
      lockViolations: paths(1000),
      omitted: { changedFiles: 0, lockViolations: 500 },
    });
    assert.ok(message.length < 2000, `the message holds ${message.length} characters`);
    assert.ok(message.startsWith(`changed files outside the declared locks: ${paths(20).join(', ')} and `), message);
    assert.match(message, / and 1480 more$/);
    assert.ok(!message.includes(paths(21)[20] as string), 'the 21st file is not named');
  });

  it('names every file when there are 20 at most', () => {
    assert.equal(
      lockViolationMessage({ lockViolations: ['src/a.ts', 'src/b.ts'] }),
      'changed files outside the declared locks: src/a.ts, src/b.ts',
    );
  });
});
