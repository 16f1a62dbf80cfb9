import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveTaskLocks } from '../../src/api/locks/lock-input';

describe('a task’s locks as its workflow takes them', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-lock-input-'));
    mkdirSync(join(dir, 'repo'));
    symlinkSync(join(dir, 'repo'), join(dir, 'link'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('scopes them to the repository’s real path', () => {
    assert.deepEqual(resolveTaskLocks(['src/**'], join(dir, 'link'), 'locks'), {
      locks: { repo: join(dir, 'repo'), globs: ['src/**'] },
      problems: [],
    });
  });

  it('keeps them when the directory cannot be seen now (a later start on another replica)', () => {
    assert.deepEqual(resolveTaskLocks(['src/**'], join(dir, 'gone', '.', 'repo'), 'locks'), {
      locks: { repo: join(dir, 'gone', 'repo'), globs: ['src/**'] },
      problems: [],
    });
  });

  it('refuses a repository whose path would not fit its lock manager’s workflow id, naming the field', () => {
    const long = join(dir, 'x'.repeat(1000));
    const { locks, problems } = resolveTaskLocks(['src/**'], long, 'tasks.0.locks');
    assert.equal(locks, undefined);
    assert.equal(problems[0]?.field, 'tasks.0.locks');
    assert.match(problems[0]?.problems[0] ?? '', /at most 994 bytes/);
  });
});
