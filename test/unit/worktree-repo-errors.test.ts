import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { GitError, gitVia, type Git } from '../../activities/git/git';
import { createWorktreeActivities } from '../../activities/git/worktree.activities';
import { initRepo } from '../support/git';

const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });

describe('preparing a worktree in a repository git cannot read', () => {
  let dir: string;
  let repo: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-worktree-repo-'));
    repo = join(dir, 'repo');
    initRepo(repo);
    writeFileSync(join(dir, 'a-file'), 'not a directory\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** What preparing a task in `repoPath` fails with; git's first command there fails with `gitFails` when given. */
  const failure = async (repoPath: string, gitFails?: GitError): Promise<unknown> => {
    const real = gitVia();
    const git: Git = (cwd, args, signal) =>
      gitFails !== undefined && args[0] === 'for-each-ref' ? Promise.reject(gitFails) : real(cwd, args, signal);
    const activities = createWorktreeActivities({ worktreeRoot: join(dir, 'worktrees'), workerQueue: 'q', git });
    return env.run(activities.prepareWorktree, { taskId: 't', repoPath }).then(
      () => assert.fail('expected a failure'),
      (err: unknown) => err,
    );
  };

  const invalidInput = (err: unknown, message: RegExp): void => {
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'invalid_input', String(err));
    assert.match(err.message, message);
  };

  it('refuses for good a path that is not there, or not a git repository', async () => {
    invalidInput(await failure(join(dir, 'missing')), /missing does not exist/);
    invalidInput(await failure(join(dir, 'a-file', 'repo')), /does not exist/);
    invalidInput(await failure(dir), /is not a git repository/);
    invalidInput(await failure(join(dir, 'a-file')), /is not a git repository/);
  });

  /** A plain error, which the activity's retry policy retries, naming the repository and saying `message`. */
  const retryable = (err: unknown, message: RegExp): void => {
    assert.ok(err instanceof Error && !(err instanceof ApplicationFailure), String(err));
    assert.ok(err.message.includes(repo), err.message);
    assert.match(err.message, message);
  };

  it('retries any other failure, with what git said', async () => {
    const distrusted = `fatal: detected dubious ownership in repository at '${repo}'\n`;
    retryable(await failure(repo, new GitError(['for-each-ref'], 128, distrusted)), /dubious ownership/);
    retryable(await failure(repo, new GitError(['for-each-ref'], null, 'the spawner is gone')), /the spawner is gone/);
  });
});
