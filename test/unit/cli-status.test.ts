import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import {
  atelierInProcess as atelier,
  PATIENT,
  sendJson,
  stubApi,
  taskDocument,
  type StubApi,
} from '../support/cli-in-process';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';
const SHA = '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b';

/** A succeeded task without a repository, with `extra` on top. */
const taskDoc = (extra: Record<string, unknown>) =>
  taskDocument(ID, { status: 'succeeded', runs: [], repo: null, commit: null, result: null, ...extra });

/** `atelier status`: what it says of a task's output, its log, its error and its git work. */
describe('CLI: status', () => {
  let api: StubApi;
  let answer: Record<string, unknown>;

  before(async () => {
    api = await stubApi((req, res) =>
      req.url === `/v1/tasks/${ID}` ? sendJson(res, 200, answer) : sendJson(res, 404, { message: 'no' }),
    );
  });
  after(() => api.close());

  const status = async (): Promise<string> => {
    const r = await atelier(['status', ID], api.url, { timing: PATIENT });
    assert.equal(r.code, EXIT.ok, r.stderr);
    return r.stdout;
  };

  it("says that a succeeded task's output is not shown, how long it is and where to read it", async () => {
    answer = taskDoc({ result: { output: 'Hello from Atelier', exitCode: 0 } });
    const shown = await status();
    assert.match(
      shown,
      new RegExp(`^output {4}18 chars, not shown: atelier status --json ${ID} has it \\(result\\.output\\)$`, 'm'),
    );
    assert.match(shown, new RegExp(`^logs {6}atelier logs ${ID}$`, 'm'));
    assert.doesNotMatch(shown, /output \(\d+ chars\): /, 'no line that reads as if the output were a command');

    answer = taskDoc({ status: 'running', result: null });
    const running = await status();
    assert.doesNotMatch(running, /^output/m);
    assert.match(running, new RegExp(`^logs {6}atelier logs -f ${ID}$`, 'm'), 'a running task is followed');
  });

  it("shows a cancelled task's error without its class again", async () => {
    answer = taskDoc({ status: 'cancelled', error: { class: 'cancelled', message: 'task cancelled' } });
    assert.match(await status(), /^status {4}cancelled \(task cancelled\)$/m);
    answer = taskDoc({ status: 'failed', error: { class: 'nonzero_exit', message: 'agent exited with code 3' } });
    assert.match(await status(), /^status {4}failed \(nonzero_exit: agent exited with code 3\)$/m);
  });

  it("shows a git task's repository, branch, short commit and diffstat summary", async () => {
    const commit = {
      branch: `atelier/${ID}`,
      baseSha: 'f'.repeat(40),
      sha: SHA,
      changedFiles: ['src/a.ts'],
      diffstat: ' src/a.ts | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)',
      lockViolations: [],
      diff: `/v1/tasks/${ID}/diff`,
    };
    answer = taskDoc({ repo: { path: '/srv/app', ref: 'main' }, commit });
    const shown = await status();
    assert.match(shown, /^repo {6}\/srv\/app \(from main\)$/m);
    assert.match(shown, new RegExp(`^branch {4}atelier/${ID}$`, 'm'));
    assert.match(shown, /^commit {4}1a2b3c4d5e6f: 1 file changed, 1 insertion\(\+\), 1 deletion\(-\)$/m);

    // What the commit could not hold is said too (the diffstat's first line), and a commit without changes.
    const uncommitted = " not committed (a repository of its own, or a submodule's own changes): vendor/lib/";
    answer = taskDoc({
      repo: { path: '/srv/app', ref: null },
      commit: { ...commit, diffstat: `${uncommitted}\n src/a.ts | 2 +-\n 1 file changed, 2 insertions(+)` },
    });
    const partly = await status();
    assert.match(partly, /^repo {6}\/srv\/app$/m);
    assert.match(
      partly,
      /^commit {4}1a2b3c4d5e6f: 1 file changed, 2 insertions\(\+\)\n {10}not committed \(.*\): vendor\/lib\/$/m,
    );
    answer = taskDoc({ repo: { path: '/srv/app', ref: null }, commit: { ...commit, diffstat: '' } });
    assert.match(await status(), /^commit {4}1a2b3c4d5e6f: no changes$/m);

    // Before its first commit, the repository only.
    answer = taskDoc({ status: 'running', repo: { path: '/srv/app', ref: null }, commit: null });
    const before = await status();
    assert.match(before, /^repo {6}\/srv\/app$/m);
    assert.doesNotMatch(before, /^(branch|commit) /m);
  });
});
