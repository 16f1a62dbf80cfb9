import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import { atelierInProcess as atelier, PATIENT, sendJson, stubApi, type StubApi } from '../support/cli-in-process';
import { within } from '../support/wait-for';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';
const links = { self: `/v1/tasks/${ID}`, logs: `/v1/tasks/${ID}/logs`, temporalUi: 'http://ui/x' };

type Poll = (res: ServerResponse) => void;

/** `submit --wait`, `retry --wait` and `reset --wait`: following a task once it was submitted. */
describe('CLI: --wait', () => {
  let api: StubApi;
  let url: string;
  /** Answers GET /v1/tasks/ID; a POST submits task ID, or to /retry starts its run 2. */
  let poll: Poll;

  before(async () => {
    api = await stubApi((req, res) => {
      if (req.method === 'POST' && req.url === `/v1/tasks/${ID}/retry`) {
        return sendJson(res, 201, { id: ID, run: 2, runId: 'run-2', fromRun: 1 });
      }
      if (req.method === 'POST') return sendJson(res, 201, { id: ID, status: 'queued', links });
      poll(res);
    });
    url = api.url;
  });
  after(() => api.close());

  it('says that a task whose following fails was submitted and goes on, with --json too, and exits 6', async () => {
    poll = (res) => sendJson(res, 500, { statusCode: 500, message: 'Internal server error' });
    const r = await atelier(['submit', '--wait', '--json', 'do it'], url);
    assert.equal(r.code, EXIT.waitFailed, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^submitted task ${ID}`, 'm'));
    assert.match(r.stderr, /answered 500: Internal server error\n/);
    assert.match(r.stderr, new RegExp(`stopped waiting for task ${ID}, which was submitted and goes on`));
  });

  it('cuts its live progress line to the width of the terminal, so that redrawing it leaves no row behind', async () => {
    const worker = `agent-worker:4242-5f0c2a9e@${'build-host.'.repeat(4)}example`;
    const attempts = [{ number: 1, worker }];
    const task = (status: string) => ({
      id: ID,
      status,
      maxAttempts: 3,
      createdAt: new Date().toISOString(),
      attempts,
    });
    let polls = 0;
    poll = (res) =>
      sendJson(res, 200, ++polls < 3 ? task('running') : { ...task('succeeded'), result: { output: '' } });
    const r = await atelier(['submit', '--wait', 'do it'], url, { ttyStderr: true, stderrColumns: 80 });
    assert.equal(r.code, EXIT.ok, r.stderr);
    const redrawn = r.stderr.split('\r\x1b[2K').slice(1);
    assert.ok(redrawn.length >= 3, JSON.stringify(r.stderr));
    assert.match(redrawn[0] ?? '', / · running · attempt 1\/3 · agent-wo…$/);
    for (const line of redrawn) assert.ok([...line.trimEnd()].length <= 79, JSON.stringify(line));
  });

  it('--wait-timeout stops waiting for a task stuck queued, says that it goes on, and exits 7', async () => {
    const queued = { id: ID, status: 'queued', maxAttempts: 3, createdAt: new Date().toISOString(), attempts: [] };
    poll = (res) => sendJson(res, 200, queued);
    const started = Date.now();
    // Without the timeout, the wait would never end.
    const r = await within(
      'the wait to stop',
      30_000,
      atelier(['submit', '--wait', '--wait-timeout', '1', 'do it'], url, { ttyStderr: true }),
    );
    const took = Date.now() - started;
    assert.equal(r.code, EXIT.waitTimedOut, r.stderr);
    assert.ok(took >= 1000, `took ${took} ms`);
    const note = `\nstopped waiting after 1 s (--wait-timeout); task ${ID} goes on (atelier status ${ID})\n`;
    assert.ok(r.stderr.endsWith(note), JSON.stringify(r.stderr));
    assert.match(r.stderr, /· queued · /, 'the progress line was shown, then ended');
  });

  it("ends the agent's output with a line feed on a terminal, and writes its bytes as they are to a pipe", async () => {
    const succeededWith = (output: string) => ({
      id: ID,
      status: 'succeeded',
      createdAt: new Date().toISOString(),
      attempts: [],
      result: { output, exitCode: 0 },
    });
    poll = (res) => sendJson(res, 200, succeededWith('Hello from Atelier'));
    const terminal = await atelier(['submit', '--wait', 'do it'], url, { ttyStdout: true, timing: PATIENT });
    assert.equal(terminal.code, EXIT.ok, terminal.stderr);
    assert.equal(terminal.stdout, 'Hello from Atelier\n');
    const piped = await atelier(['submit', '--wait', 'do it'], url, { timing: PATIENT });
    assert.equal(piped.code, EXIT.ok, piped.stderr);
    assert.equal(piped.stdout, 'Hello from Atelier');
    // The same for retry --wait, which follows the new run as submit --wait does.
    const retried = await atelier(['retry', '--wait', ID], url, { ttyStdout: true, timing: PATIENT });
    assert.equal(retried.code, EXIT.ok, retried.stderr);
    assert.equal(retried.stdout, 'Hello from Atelier\n');

    poll = (res) => sendJson(res, 200, succeededWith('two lines\nended\n'));
    const ended = await atelier(['submit', '--wait', 'do it'], url, { ttyStdout: true, timing: PATIENT });
    assert.equal(ended.stdout, 'two lines\nended\n', 'an output that ends its line gets no other');
  });

  it("says a task's error class once: not again where it is the status, nor where the message begins with it", async () => {
    const ended = (status: string, error: { class: string; message: string }) => ({
      id: ID,
      status,
      createdAt: new Date().toISOString(),
      attempts: [],
      error,
    });
    poll = (res) => sendJson(res, 200, ended('cancelled', { class: 'cancelled', message: 'task cancelled' }));
    const cancelled = await atelier(['submit', '--wait', 'do it'], url, { timing: PATIENT });
    assert.equal(cancelled.code, EXIT.taskCancelled, cancelled.stderr);
    assert.ok(cancelled.stderr.endsWith(`\ntask ${ID} cancelled: task cancelled\n`), JSON.stringify(cancelled.stderr));

    poll = (res) => sendJson(res, 200, ended('failed', { class: 'timeout', message: 'timeout: ran past 600 s' }));
    const prefixed = await atelier(['submit', '--wait', 'do it'], url, { timing: PATIENT });
    assert.equal(prefixed.code, EXIT.taskFailed, prefixed.stderr);
    assert.ok(prefixed.stderr.endsWith(`\ntask ${ID} failed: timeout: ran past 600 s\n`), prefixed.stderr);

    // A class that adds to the status is kept.
    poll = (res) => sendJson(res, 200, ended('failed', { class: 'nonzero_exit', message: 'agent exited with code 3' }));
    const failed = await atelier(['submit', '--wait', 'do it'], url, { timing: PATIENT });
    assert.equal(failed.code, EXIT.taskFailed, failed.stderr);
    assert.ok(failed.stderr.endsWith(`\ntask ${ID} failed: nonzero_exit: agent exited with code 3\n`), failed.stderr);
  });

  it("retry --wait counts the time from the new run's request, not from the task's submission", async () => {
    const anHourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const run = (number: number, createdAt: string) => ({
      number,
      kind: number === 1 ? 'submitted' : 'retry',
      createdAt,
    });
    let polls = 0;
    poll = (res) =>
      sendJson(res, 200, {
        id: ID,
        status: ++polls < 2 ? 'queued' : 'succeeded',
        createdAt: anHourAgo,
        finishedAt: null,
        attempts: [],
        runs: [run(1, anHourAgo), run(2, new Date(Date.now() - 2000).toISOString())],
        result: { output: '', exitCode: 0 },
      });
    const r = await atelier(['retry', '--wait', ID], url, { timing: PATIENT });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.match(r.stderr, new RegExp(`^task ${ID}: run 2 started \\(retry of run 1\\)$`, 'm'));
    const since = /^task \S+ · queued · (.+)$/m.exec(r.stderr)?.[1];
    assert.ok(since !== undefined, r.stderr);
    assert.match(since, /^[2-9]\.\ds$/, `about 2 s since the retry, not an hour: ${r.stderr}`);
  });

  it('--wait-timeout is bad usage without --wait or out of range, before anything is submitted', async () => {
    poll = (res) => sendJson(res, 500, {});
    for (const args of [
      ['--wait-timeout', '5'],
      ['--wait', '--wait-timeout', '0'],
      ['--wait', '--wait-timeout', '1.5'],
    ]) {
      const r = await atelier(['submit', ...args, 'do it'], url);
      assert.equal(r.code, EXIT.usage, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--wait-timeout (needs --wait|must be an integer from 1 to 604800)/);
      assert.doesNotMatch(r.stderr, /submitted task/);
    }
  });
});
