import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnDirectly, type SpawnAgent } from '../../activities/agent/agent-process';
import { AgentSpawner } from '../../activities/agent/agent-spawner';
import { GitError, gitVia } from '../../activities/git/git';
import { DEFAULT_SPAWNER_BINARY } from '../../src/workers/agent-spawn';
import { git as sh, initRepo } from '../support/git';
import { processAlive, waitFor } from '../support/wait-for';

/** Both ways the agent worker starts git: from itself, and through its spawner helper (infra/spawner). */
const spawner = new AgentSpawner(DEFAULT_SPAWNER_BINARY);
const SPAWNS: [string, SpawnAgent][] = [
  ['started directly', spawnDirectly],
  ['started by atelier-spawner', spawner.spawn],
];
after(() => spawner.close());

for (const [how, spawn] of SPAWNS)
  describe(`git, ${how}`, { timeout: 30_000 }, () => {
    const git = gitVia(spawn);
    let dir: string;
    let repo: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'atelier-git-'));
      repo = join(dir, 'repo');
      initRepo(repo);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('returns what the command printed, on stdout and stderr apart', async () => {
      const head = await git(repo, ['rev-parse', 'HEAD']);
      assert.equal(head.stdout.trim(), sh(repo, 'rev-parse', 'HEAD'));
      assert.equal(head.stderr, '');
    });

    it('rejects a failing command with a GitError naming its arguments, exit code and what git said', async () => {
      const err = await git(repo, ['rev-parse', '--verify', 'no-such-branch']).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof GitError);
      assert.equal(err.exitCode, 128);
      assert.deepEqual(err.args, ['rev-parse', '--verify', 'no-such-branch']);
      assert.match(err.message, /^git rev-parse --verify no-such-branch failed \(128\): fatal: /);
    });

    it('says what git printed on stdout when it printed nothing on stderr', async () => {
      const err = await git(repo, ['commit', '-m', 'nothing staged']).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof GitError);
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /failed \(1\): .*nothing to commit/s);
    });

    it("ignores the user's colours, path prefixes, diff context and fsmonitor, so a patch applies and no program runs", async () => {
      const home = join(dir, `home-${how.length}`);
      const fsmonitorRan = join(home, 'fsmonitor-ran');
      mkdirSync(home);
      writeFileSync(join(home, 'fsmonitor'), `#!/bin/sh\ntouch '${fsmonitorRan}'\nexit 1\n`);
      chmodSync(join(home, 'fsmonitor'), 0o755);
      writeFileSync(
        join(home, '.gitconfig'),
        `[color]\n\tui = always\n\tdiff = always\n[diff]\n\tnoprefix = true\n\tcontext = 0\n[core]\n\tfsmonitor = ${join(home, 'fsmonitor')}\n`,
      );
      const worktree = join(dir, `configured-${how.length}`);
      sh(repo, 'worktree', 'add', '--quiet', '-b', `configured-${how.length}`, worktree);
      writeFileSync(join(worktree, 'README.md'), 'hello\nworld\n');
      const userHome = process.env.HOME;
      process.env.HOME = home;
      const configured = (() => {
        try {
          return gitVia(spawn);
        } finally {
          process.env.HOME = userHome;
        }
      })();
      await configured(worktree, ['status', '--porcelain']);
      const stat = (await configured(worktree, ['diff', '--stat'])).stdout;
      const patch = (await configured(worktree, ['diff', '--binary'])).stdout;
      assert.equal(existsSync(fsmonitorRan), false, 'the fsmonitor program ran');
      assert.ok(!(stat + patch).includes('\x1b'), 'colours');
      assert.match(patch, /^diff --git a\/README\.md b\/README\.md\n/);
      const patchFile = join(dir, `configured-${how.length}.patch`);
      writeFileSync(patchFile, patch);
      sh(worktree, 'checkout', '--quiet', '--', 'README.md');
      sh(worktree, 'apply', patchFile);
      assert.equal(readFileSync(join(worktree, 'README.md'), 'utf8'), 'hello\nworld\n');
    });

    it('rejects a command in a directory that does not exist, without an exit code', async () => {
      const err = await git(join(dir, 'missing'), ['status']).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof GitError);
      assert.equal(err.exitCode, null);
    });

    it("passes arguments as data and runs none of the repository's hooks", async () => {
      const hooks = join(repo, '.git', 'hooks');
      mkdirSync(hooks, { recursive: true });
      const marker = join(dir, 'hook-ran');
      writeFileSync(join(hooks, 'pre-commit'), `#!/bin/sh\ntouch '${marker}'\nexit 1\n`);
      chmodSync(join(hooks, 'pre-commit'), 0o755);
      const subject = `$(touch ${marker}); \`touch ${marker}\` | & ; '"`;
      await git(repo, ['commit', '--quiet', '--allow-empty', '-m', subject]);
      assert.equal(sh(repo, 'log', '-1', '--format=%s'), subject);
      assert.equal(existsSync(marker), false, 'a hook or a shell ran');
    });

    it('kills a command with its process group when its signal aborts, and rejects with the reason', async () => {
      const pidFile = join(dir, `hung-${how.length}-${Date.now()}`);
      // A git that does not end by itself: an alias that runs a shell, which records its pid and sleeps.
      const hung = ['-c', `alias.hang=!echo $$ > '${pidFile}'; exec sleep 60`, 'hang'];
      const abort = new AbortController();
      const running = git(repo, hung, abort.signal);
      const pid = await waitFor('the command to start', () =>
        existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined,
      );
      abort.abort(new Error('the activity timed out'));
      await assert.rejects(running, /the activity timed out/);
      await waitFor('the command to be gone', () => !processAlive(pid), { timeoutMs: 5_000, intervalMs: 20 });
      await assert.rejects(
        git(repo, ['status'], abort.signal),
        /the activity timed out/,
        'an aborted signal starts nothing',
      );
    });
  });
