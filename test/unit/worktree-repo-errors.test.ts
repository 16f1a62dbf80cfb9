import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { GitError, gitVia, type Git } from '../../activities/git/git';
import { createWorktreeActivities, type PrepareWorktreeInput } from '../../activities/git/worktree.activities';
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

  /**
   * What preparing a task in `repoPath` (with `task`'s ref and merges) fails with; the git command that
   * `failsAt` picks (default its first there) fails with `gitFails` when given.
   */
  const failure = async (
    repoPath: string,
    gitFails?: GitError,
    failsAt = (args: readonly string[]) => args[0] === 'for-each-ref',
    task: Pick<PrepareWorktreeInput, 'ref' | 'merge'> = {},
  ): Promise<unknown> => {
    const real = gitVia();
    const git: Git = (cwd, args, signal) =>
      gitFails !== undefined && failsAt(args) ? Promise.reject(gitFails) : real(cwd, args, signal);
    const activities = createWorktreeActivities({ worktreeRoot: join(dir, 'worktrees'), workerQueue: 'q', git });
    return env.run(activities.prepareWorktree, { taskId: 't', repoPath, ...task }).then(
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

  it('refuses for good a ref or a commit to merge that is not there, and retries a git that failed otherwise', async () => {
    invalidInput(await failure(repo, undefined, undefined, { ref: 'nope' }), /ref nope not found/);
    invalidInput(await failure(repo, undefined, undefined, { merge: ['nope'] }), /commit nope to merge not found/);
    // The command resolving `main` is killed (a cancel, the worker shutting down): not the task's fault.
    const killed = new GitError(['rev-parse'], null, 'killed by SIGKILL');
    const resolvingMain = (args: readonly string[]) => args[0] === 'rev-parse' && args.at(-1) === 'main^{commit}';
    assert.equal(await failure(repo, killed, resolvingMain, { ref: 'main' }), killed);
    assert.equal(await failure(repo, killed, resolvingMain, { merge: ['main'] }), killed);
  });
});
