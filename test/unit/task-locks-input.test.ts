import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lockProblems, taskLocksAtStart } from '../../src/api/locks/lock-input';

describe('a task’s locks as its workflow takes them', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-lock-input-'));
    mkdirSync(join(dir, 'repo'));
    symlinkSync(join(dir, 'repo'), join(dir, 'link'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('scopes them to the repository’s real path', () => {
    assert.deepEqual(lockProblems(['src/**'], join(dir, 'link'), 'locks'), []);
    assert.deepEqual(taskLocksAtStart(['src/**'], join(dir, 'link')), { repo: join(dir, 'repo'), globs: ['src/**'] });
  });

  it('keeps them at a later start that cannot see the directory now (a retry on another replica)', () => {
    assert.deepEqual(taskLocksAtStart(['src/**'], join(dir, 'gone', '.', 'repo')), {
      repo: join(dir, 'gone', 'repo'),
      globs: ['src/**'],
    });
    assert.equal(taskLocksAtStart([], join(dir, 'link')), undefined);
  });

  it('refuses a glob the matcher cannot read, naming the glob and the problem', () => {
    assert.deepEqual(lockProblems(['src/**', '{src/a.ts,lib/b.ts}', 'src/[z-a]'], join(dir, 'repo'), 'tasks.1.locks'), [
      {
        field: 'tasks.1.locks',
        problems: [
          'lock "{src/a.ts,lib/b.ts}" has a "{" not closed within its path segment',
          'lock "src/[z-a]" has a range out of order ("z-a")',
        ],
      },
    ]);
  });

  it('refuses locks of more than 256 path segments in all: the lock manager compares them inside a workflow task', () => {
    const deep = (i: number) => `${Array(31).fill('d').join('/')}/f${i}`;
    assert.deepEqual(
      lockProblems(
        Array.from({ length: 8 }, (_, i) => deep(i)),
        join(dir, 'repo'),
        'locks',
      ),
      [],
    );
    assert.deepEqual(
      lockProblems(
        Array.from({ length: 9 }, (_, i) => deep(i)),
        join(dir, 'repo'),
        'locks',
      ),
      [{ field: 'locks', problems: ['locks have more than 256 path segments in all'] }],
    );
  });

  it('refuses a repository whose path would not fit its lock manager’s workflow id, naming the field', () => {
    const long = join(dir, 'x'.repeat(1000));
    const problems = lockProblems(['src/**'], long, 'tasks.0.locks');
    assert.equal(problems[0]?.field, 'tasks.0.locks');
    assert.match(problems[0]?.problems[0] ?? '', /at most 994 bytes/);
  });
});
