import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historySizedCommit } from '../../activities/git/history-sized-commit';

const commit = (files: number) => {
  const changedFiles = Array.from({ length: files }, (_, i) => `vendor/some/long/path/file-${i}.js`);
  return {
    branch: 'atelier/t',
    baseSha: 'a'.repeat(40),
    sha: 'b'.repeat(40),
    changedFiles,
    lockViolations: changedFiles,
    diffstat: [...changedFiles.map((f) => ` ${f} | 1 +`), ` ${files} files changed, ${files} insertions(+)`].join('\n'),
  };
};

describe('historySizedCommit', () => {
  it('keeps a commit of ordinary size as it is', () => {
    const small = commit(20);
    assert.deepEqual(historySizedCommit(small), small);
  });

  it('keeps the first 1000 paths and 64 KB of the diffstat of a huge commit, with its summary line', () => {
    const huge = historySizedCommit(commit(50_000));
    assert.deepEqual(huge.changedFiles, commit(1000).changedFiles);
    assert.equal(huge.lockViolations.length, 1000);
    assert.deepEqual(huge.omitted, { changedFiles: 49_000, lockViolations: 49_000 });
    assert.ok(huge.diffstat.length <= 64 * 1024 + 40, String(huge.diffstat.length));
    const lines = huge.diffstat.split('\n');
    assert.equal(lines[0], ' vendor/some/long/path/file-0.js | 1 +');
    assert.match(lines[lines.length - 2] ?? '', /^ … \d+ more files$/);
    assert.equal(lines[lines.length - 1], ' 50000 files changed, 50000 insertions(+)');
    assert.ok(JSON.stringify(huge).length < 300 * 1024, 'far below a history payload limit');
  });
});
