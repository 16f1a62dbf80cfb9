import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';
import { taskDocument } from '../support/cli-in-process';
import { CLI, runCli, shown, startCli, type CliResult, type RunningCli } from '../support/cli-process';
import { waitFor } from '../support/wait-for';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Nest's answer to a route it does not have. */
const noRoute = (req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({ statusCode: 404, message: `Cannot ${req.method} ${req.url?.split('?')[0]}`, error: 'Not Found' }),
  );
};

/** One chunk of the log stream, with its event id `run.attempt.seq`. */
const logEvent = (id: string, text: string): string =>
  `id: ${id}\nevent: log\ndata: ${JSON.stringify({ run: 1, attempt: 1, seq: Number(id.split('.')[2]), stream: 'stdout', text })}\n\n`;
const endEvent = `event: end\ndata: ${JSON.stringify({ status: 'succeeded', run: 1 })}\n\n`;

const sendJson = (res: ServerResponse, status: number, doc: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(doc));
};

const task = (status: string) => taskDocument(ID, { status });

const succeeded = { ...task('succeeded'), result: { output: 'done\n', exitCode: 0 } };

const submitted = {
  id: ID,
  status: 'queued',
  workflowId: `task-${ID}`,
  runId: 'run-1',
  links: { self: `/v1/tasks/${ID}`, logs: `/v1/tasks/${ID}/logs`, temporalUi: 'http://ui/x' },
};

/** `submit` of task ID, then `GET /v1/tasks/ID` answered by `poll` (given the number of the poll, from 1). */
function submitThen(poll: (n: number, res: ServerResponse) => void): Handler {
  let polls = 0;
  return (req, res) => {
    if (req.method === 'POST' && req.url === '/v1/tasks') return sendJson(res, 201, submitted);
    if (req.url !== `/v1/tasks/${ID}`) return noRoute(req, res);
    polls += 1;
    poll(polls, res);
  };
}

/** A dashboard with `running` tasks running, and no workers endpoint beside it. */
const dashboardOf =
  (running: number): Handler =>
  (req, res) => {
    if (req.url !== '/v1/dashboard') return noRoute(req, res);
    const snapshot: DashboardSnapshot = {
      generatedAt: new Date().toISOString(),
      cursor: '0',
      temporalUi: { workflows: 'http://ui/w' },
      counts: { queued: 0, running, succeededLastHour: 0, failedLastHour: 0, cancelledLastHour: 0 },
      queues: [],
      workers: [],
      running: Array.from({ length: running }, (_, i) => ({
        id: `task-${i}`,
        agent: 'echo',
        model: null,
        attempt: 1,
        worker: null,
        startedAt: null,
        elapsedSeconds: i,
        links: { self: '', temporalUi: '' },
      })),
      recent: [],
      failures: { attemptsByClass: [], recent: [] },
      series: { minutes: [], submitted: [], succeeded: [], failed: [], cancelled: [], p50Seconds: [], p95Seconds: [] },
    };
    sendJson(res, 200, snapshot);
  };

/** The CLI's result once it has exited; fails (and kills it) when it is still running after `timeoutMs`. */
async function exited(running: RunningCli, what: string, timeoutMs = 10_000): Promise<CliResult> {
  const gone = (): boolean => running.child.exitCode !== null || running.child.signalCode !== null;
  try {
    await waitFor(what, gone, { timeoutMs });
  } finally {
    if (!gone()) running.child.kill('SIGKILL');
  }
  return running.done;
}

/**
 * The CLI against API servers that lack the newer endpoints (no /v1/plans, no /v1/workers, logs
 * without ?follow), against a log stream that drops or an API that restarts, and with tokens it must
 * keep to itself: a stub server plays each part.
 */
describe('the atelier CLI against older or flaky servers', { timeout: 120_000 }, () => {
  let server: Server;
  let url: string;
  let handler: Handler = noRoute;
  let tmp: string;
  const atelier = (args: string[]) => runCli(args, { ATELIER_URL: url });

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-cli-stub-'));
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(() => {
    handler = noRoute;
  });

  it('plan submit says clearly that the server has no plans API', async () => {
    const plan = join(tmp, 'plan.yaml');
    writeFileSync(plan, 'tasks:\n  - prompt: hi\n');
    const r = await atelier(['plan', 'submit', plan]);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /has no plans endpoint: POST \/v1\/plans answered 404/);
    const notYaml = join(tmp, 'bad.yaml');
    writeFileSync(notYaml, '- just\n- a list\n');
    const bad = await atelier(['plan', 'submit', notYaml]);
    assert.equal(bad.code, 2, shown(bad));
  });

  it('workers says clearly that the server has no workers API', async () => {
    const r = await atelier(['workers']);
    assert.equal(r.code, 1, shown(r));
    assert.match(r.stderr, /has no workers endpoint: GET \/v1\/workers answered 404/);
  });

  it('workers renders the workers and queues the API reports', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          workers: [
            {
              identity: 'agent-worker:1@host',
              kind: 'agent',
              status: 'running',
              taskQueues: ['atelier-agents'],
              lastPollAt: new Date().toISOString(),
              slots: { total: 4, used: 1, free: 3 },
              runningTasks: [{ taskId: ID }],
              completed: 9,
              failed: 1,
              successRate: 0.9,
            },
          ],
          queues: [{ name: 'atelier-agents', type: 'activity', backlog: 2, backlogAgeSeconds: 5, pollers: 1 }],
        }),
      );
    };
    const r = await atelier(['workers']);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /agent-worker:1@host\s+agent\s+running\s+atelier-agents\s+1\/4\s+1\s+9\s+1\s+90%/);
    assert.match(r.stdout, /atelier-agents\s+activity\s+2\s+5\.0s\s+1/);
  });

  it('logs -f polls the plain log with an offset when the server has no log stream', async () => {
    const log = ['one\n', 'one\ntwo\n', 'one\ntwo\nthree\n'];
    let logReads = 0;
    let taskReads = 0;
    handler = (req, res) => {
      if (req.url?.startsWith(`/v1/tasks/${ID}/logs`)) {
        // An old server ignores ?follow=1 and answers with the log so far.
        const text = log[Math.min(logReads++, log.length - 1)] ?? '';
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(text);
      } else if (req.url === `/v1/tasks/${ID}`) {
        taskReads += 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(task(taskReads >= 3 ? 'succeeded' : 'running')));
      } else noRoute(req, res);
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'one\ntwo\nthree\n', 'each piece once, in order');
  });

  it('logs -f resumes a dropped log stream after the last event it printed', async () => {
    const seen: (string | undefined)[] = [];
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      const last = req.headers['last-event-id'] as string | undefined;
      seen.push(last);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      if (last === undefined) {
        res.write(': hello\n\n');
        res.write(logEvent('1.1.0', 'alpha\n'));
        // The connection drops before the end of the run.
        setTimeout(() => res.socket?.destroy(), 50);
      } else {
        res.write(logEvent('1.1.1', 'multi\nline\n'));
        res.end(endEvent);
      }
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'alpha\nmulti\nline\n');
    assert.deepEqual(seen, [undefined, '1.1.0']);

    const json = await atelier(['logs', '-f', ID, '--json']);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; text?: string });
    assert.deepEqual(
      lines.map((l) => l.event),
      ['log', 'log', 'end'],
    );
  });

  it('logs -f prints nothing twice when a reconnection meets a replica without the stream, mid-deploy', async () => {
    const seen: (string | undefined)[] = [];
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      const last = req.headers['last-event-id'] as string | undefined;
      seen.push(last);
      if (seen.length === 2) {
        // An older replica ignores ?follow=1: the whole log so far, as plain text.
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('alpha\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      if (last === undefined) {
        res.write(logEvent('1.1.0', 'alpha\n'));
        setTimeout(() => res.socket?.destroy(), 50);
      } else {
        res.write(logEvent('1.1.1', 'beta\n'));
        res.end(endEvent);
      }
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'alpha\nbeta\n', 'alpha once');
    assert.deepEqual(seen, [undefined, '1.1.0', '1.1.0']);
  });

  it('logs -f keeps following a quiet run whose stream a proxy keeps cutting', async () => {
    let connections = 0;
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      connections += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      // More cuts in a row than the retries allowed for an API that is down; only keep-alives meanwhile.
      if (connections <= 7) {
        res.write(': keep-alive\n\n');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      res.write(logEvent('1.1.0', 'at last\n'));
      res.end(endEvent);
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'at last\n');
    assert.equal(connections, 8);
  });

  it('logs -f rides out an API restart, resuming after the last event it printed', async () => {
    const port = Number(new URL(url).port);
    const seen: (string | undefined)[] = [];
    let restarted: Promise<void> | undefined;
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      const last = req.headers['last-event-id'] as string | undefined;
      seen.push(last);
      // No kept-alive connection: once the listener is closed, every new connection is refused.
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'close' });
      if (last === undefined) {
        res.end(logEvent('1.1.0', 'before\n'));
        // The API stops, and is back on the same port 2 s later.
        restarted = new Promise<void>((r) => server.close(() => r()))
          .then(() => delay(2000))
          .then(() => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)));
      } else {
        res.write(logEvent('1.1.1', 'after\n'));
        res.end(endEvent);
      }
    };
    const r = await atelier(['logs', '-f', ID]);
    await restarted;
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'before\nafter\n', 'each chunk once, in order');
    assert.deepEqual(seen, [undefined, '1.1.0']);
  });

  it('logs -f rides out a proxy answering 502-504 while the API behind it restarts', async () => {
    const seen: (string | undefined)[] = [];
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      const last = req.headers['last-event-id'] as string | undefined;
      seen.push(last);
      if (seen.length === 2) {
        res.writeHead(502, { 'content-type': 'text/html' });
        return res.end('<html>bad gateway</html>');
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      if (last === undefined) return res.end(logEvent('1.1.0', 'before\n'));
      res.write(logEvent('1.1.1', 'after\n'));
      res.end(endEvent);
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'before\nafter\n', 'each chunk once, in order');
    assert.deepEqual(seen, [undefined, '1.1.0', '1.1.0']);
  });

  it('logs -f waits as a busy replica says (503 with Retry-After), from the first connection on', async () => {
    const at: number[] = [];
    handler = (req, res) => {
      if (!req.url?.startsWith(`/v1/tasks/${ID}/logs?follow=1`)) return noRoute(req, res);
      at.push(Date.now());
      if (at.length <= 2) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
        return res.end(JSON.stringify({ statusCode: 503, message: 'this API replica has 1000 log followers already' }));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.write(logEvent('1.1.0', 'followed\n'));
      res.end(endEvent);
    };
    const r = await atelier(['logs', '-f', ID]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'followed\n');
    assert.equal(r.stderr.split('the API is busy: following again in 1 s').length, 3, shown(r));
    assert.equal(at.length, 3);
    for (const i of [1, 2]) assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 950, `waited a second before try ${i + 1}`);
  });

  it('--help names ATELIER_TOKEN and ATELIER_URL and never prints their values', async () => {
    const secretUrl = 'http://url-help-must-hide.example';
    const r = await runCli(['--help'], { ATELIER_URL: secretUrl, ATELIER_TOKEN: 'token-help-must-hide' });
    assert.equal(r.code, 0, `exit ${r.code}`);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('token-help-must-hide'), 'the token is printed');
    assert.ok(!`${r.stdout}${r.stderr}`.includes('url-help-must-hide'), 'the URL is printed');
    assert.match(r.stdout, /--token <token>\s+bearer token for the API \(env: ATELIER_TOKEN\)/);
    assert.match(
      r.stdout,
      /--url <url>\s+Atelier API base URL \(default:\s+"http:\/\/127\.0\.0\.1:3000", env: ATELIER_URL\)/,
    );
  });

  it('refuses an API URL that holds a password, without echoing it or calling the API', async () => {
    const requests: string[] = [];
    handler = (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      noRoute(req, res);
    };
    const r = await runCli(['status', ID], { ATELIER_URL: url.replace('//', '//admin:url-secret-value@') });
    assert.equal(r.code, 2, shown(r));
    assert.match(r.stderr, /the API URL \(--url or ATELIER_URL\) must not hold a user name or password/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('url-secret-value'), 'the password is printed');
    assert.deepEqual(requests, []);
  });

  it('refuses a token that cannot be a header value, without echoing it or calling the API', async () => {
    const requests: string[] = [];
    handler = (req, res) => {
      requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      noRoute(req, res);
    };
    for (const env of [{ ATELIER_TOKEN: 'token-part-one\ntoken-part-two' }, { ATELIER_TOKEN: 'token-with space' }]) {
      const r = await runCli(['workers'], { ATELIER_URL: url, ...env });
      assert.equal(r.code, 2, `exit ${r.code}`);
      // Checked with test(), not match(): a failure would print the output, and with it the token.
      assert.ok(/the API token \(--token or ATELIER_TOKEN\) must be visible ASCII/.test(r.stderr), 'no usage error');
      assert.ok(!/token-(part|with)/.test(`${r.stdout}${r.stderr}`), 'the token is echoed');
    }
    const flag = await runCli(['workers', '--token', 'token-part-one\ttoken-part-two'], { ATELIER_URL: url });
    assert.equal(flag.code, 2, `exit ${flag.code}`);
    assert.deepEqual(requests, [], 'no request was sent');

    const ok = await runCli(['workers'], { ATELIER_URL: url, ATELIER_TOKEN: 'token-fine_1.2~3' });
    assert.equal(ok.code, 1, `exit ${ok.code}`);
    assert.deepEqual(requests, ['GET /v1/workers Bearer token-fine_1.2~3']);
  });

  it('submit --wait polls for long without piling up abort listeners', async () => {
    let polls = 0;
    // 14 polls, 0.5 s apart: Node warns of a leak at the 11th listener on one AbortSignal.
    handler = submitThen((n, res) => {
      polls = n;
      sendJson(res, 200, n < 14 ? task('running') : succeeded);
    });
    const r = await atelier(['submit', '--wait', 'x']);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'done\n');
    assert.equal(polls, 14);
    assert.doesNotMatch(r.stderr, /MaxListenersExceededWarning/);
  });

  it("submit --wait rides out a proxy's 502 and an API restart", async () => {
    const port = Number(new URL(url).port);
    let restarted: Promise<void> | undefined;
    handler = submitThen((n, res) => {
      if (n === 1) return sendJson(res, 200, task('running'));
      if (n > 2) return sendJson(res, 200, succeeded);
      // A proxy's page for the API that stops; then nothing listens for 2 s (connections refused).
      res.writeHead(502, { 'content-type': 'text/html', connection: 'close' });
      res.end('<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
      restarted = new Promise<void>((r) => server.close(() => r()))
        .then(() => delay(2000))
        .then(() => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)));
    });
    const r = await atelier(['submit', '--wait', 'x']);
    await restarted;
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'done\n');
    assert.match(r.stderr, /the API is away \(it answered 502\); task \S+ goes on; asking again in 1 s/);
    assert.match(r.stderr, /the API is away \(no connection\); task \S+ goes on; asking again in 2 s/);
  });

  it('top quits on Ctrl-C at once, though its next update is 10 minutes away', async () => {
    handler = dashboardOf(1);
    const running = startCli(['top', '--interval', '600'], { ATELIER_URL: url });
    await waitFor('the first screen', () => running.stdout().includes('RUNNING (1)'));
    running.child.kill('SIGINT');
    const r = await exited(running, 'top to quit on Ctrl-C');
    assert.equal(r.code, 0, shown(r));
  });

  it('top quits on Ctrl-C while its request hangs', async () => {
    let asked = false;
    // Never answers.
    handler = () => {
      asked = true;
    };
    const running = startCli(['top'], { ATELIER_URL: url });
    await waitFor('the dashboard request', () => asked);
    running.child.kill('SIGINT');
    const r = await exited(running, 'top to quit on Ctrl-C');
    assert.equal(r.code, 0, shown(r));
  });

  it('top rides out an API that restarts once it has shown a snapshot, and says so', async () => {
    const dashboard = dashboardOf(1);
    let asked = 0;
    handler = (req, res) => {
      if (req.url !== '/v1/dashboard') return noRoute(req, res);
      asked += 1;
      // The second and third updates meet a proxy whose API is away.
      if (asked === 2 || asked === 3) {
        res.writeHead(502, { 'content-type': 'text/html' });
        return res.end('<html>bad gateway</html>');
      }
      dashboard(req, res);
    };
    const running = startCli(['top', '--json', '--interval', '0.5'], { ATELIER_URL: url });
    const lines = () =>
      running
        .stdout()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => Object.keys(JSON.parse(l) as object)[0]);
    await waitFor('a snapshot after the API is back', () => lines().length >= 4);
    running.child.kill('SIGINT');
    const r = await exited(running, 'top to quit on Ctrl-C');
    assert.equal(r.code, 0, shown(r));
    assert.deepEqual(lines().slice(0, 4), ['dashboard', 'error', 'error', 'dashboard']);
    assert.match(r.stdout, /"error":"GET \/v1\/dashboard answered 502[^"]*; trying again every 0.5 s"/);
  });

  it('top prints every row when its output is not a terminal', async () => {
    handler = dashboardOf(80);
    const r = await atelier(['top', '--once']);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout.match(/^task-\d+ /gm)?.length, 80, r.stdout);
  });

  it('stops quietly, exit 0, when the reader of its output goes away (| head -1)', async () => {
    handler = dashboardOf(1);
    const running = startCli(['top', '--json', '--interval', '0.5'], { ATELIER_URL: url });
    await waitFor('the first snapshot', () => running.stdout().includes('\n'));
    running.child.stdout?.destroy();
    const r = await exited(running, 'top to stop writing to a closed pipe');
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, '');
  });

  it("list's hint for the next page keeps the filters, quoted for a shell", async () => {
    const asked: string[] = [];
    handler = (req, res) => {
      const { pathname, searchParams } = new URL(req.url ?? '/', url);
      if (pathname !== '/v1/tasks') return noRoute(req, res);
      asked.push(searchParams.toString());
      sendJson(res, 200, { items: [task('failed')], nextCursor: searchParams.has('cursor') ? null : 'c1' });
    };
    const first = await atelier(['list', '--status', 'failed', '--label', "note=it's $x", '--limit', '1']);
    assert.equal(first.code, 0, shown(first));
    const hint = /^more: atelier (.+)$/m.exec(first.stderr)?.[1];
    assert.ok(hint, shown(first));
    // The hint as pasted into a shell, with `atelier` standing for this build of it.
    await promisify(execFile)('/bin/sh', ['-c', `exec "$0" "$1" ${hint}`, process.execPath, CLI], {
      env: { PATH: process.env.PATH, ATELIER_URL: url },
    });
    const filters = new URLSearchParams({ status: 'failed', label: "note:it's $x", limit: '1' });
    assert.deepEqual(asked, [filters.toString(), `${filters.toString()}&cursor=c1`]);

    // Given with --url instead of ATELIER_URL, the hint names the API, or the next page would come from another.
    const given = await runCli(['--url', url, 'list', '--status', 'failed'], {});
    assert.equal(given.code, 0, shown(given));
    assert.match(
      given.stderr,
      new RegExp(`^more: atelier --url ${url.replace(/[.]/g, '\\.')} list --status failed --cursor c1$`, 'm'),
    );
  });

  it('submit --file names a file it cannot read, as bad usage', async () => {
    const missing = join(tmp, 'missing.md');
    const r = await atelier(['submit', '--file', missing]);
    assert.equal(r.code, 2, shown(r));
    assert.ok(r.stderr.includes(`atelier: cannot read the prompt file ${missing}: ENOENT`), shown(r));
  });

  it('says that a server answering HTML is not an Atelier API, and shows an HTML error page as one line', async () => {
    handler = (req, res) => {
      if (req.url === '/v1/tasks') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end('<!doctype html>\n<html><body><h1>Welcome to nginx!</h1></body></html>\n');
      }
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(
        '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n' +
          '<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n',
      );
    };
    const other = await atelier(['list']);
    assert.equal(other.code, 1, shown(other));
    assert.equal(
      other.stderr,
      `atelier: ${url} is not an Atelier API: GET /v1/tasks answered 200 with text/html; charset=utf-8, ` +
        'not JSON (set ATELIER_URL or --url)\n',
    );
    const proxied = await atelier(['status', ID]);
    assert.equal(proxied.code, 1, shown(proxied));
    assert.equal(proxied.stderr, `atelier: GET /v1/tasks/${ID} answered 502: 502 Bad Gateway\n`);
  });

  it('follows no redirect: a submission is not turned into a GET, and the answer says where the API is', async () => {
    const asked: string[] = [];
    handler = (req, res) => {
      asked.push(`${req.method} ${req.url}`);
      if (req.url === '/v1/tasks' && req.method === 'POST') {
        res.writeHead(301, { location: 'https://atelier.example/v1/tasks' }).end();
        return;
      }
      sendJson(res, 200, { items: [], nextCursor: null });
    };
    const r = await atelier(['submit', 'do it']);
    assert.equal(r.code, 1, shown(r));
    assert.deepEqual(asked, ['POST /v1/tasks'], 'the redirect was not followed');
    assert.equal(
      r.stderr,
      'atelier: POST /v1/tasks answered 301, a redirect to https://atelier.example/v1/tasks: ' +
        `${url} is not the API's address (set ATELIER_URL or --url to the one it redirects to)\n`,
    );
    assert.equal(r.stdout, '');
  });

  it('says when to try again, that a token is wanted, and that a broken submission may have arrived', async () => {
    handler = (req, res) => {
      if (req.url === '/v1/tasks/busy/retry') {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
        res.end(JSON.stringify({ statusCode: 503, message: 'too many retries and resets under way' }));
      } else if (req.method === 'POST') {
        req.socket.destroy();
      } else {
        sendJson(res, 401, { statusCode: 401, message: 'Unauthorized' });
      }
    };
    const busy = await atelier(['retry', 'busy']);
    assert.equal(busy.code, 1, shown(busy));
    assert.equal(
      busy.stderr,
      'atelier: POST /v1/tasks/busy/retry answered 503: too many retries and resets under way (try again in 5 s)\n',
    );
    const unauthorized = await atelier(['status', ID]);
    assert.equal(
      unauthorized.stderr,
      `atelier: GET /v1/tasks/${ID} answered 401: Unauthorized (give a token with --token or ATELIER_TOKEN)\n`,
    );
    const broken = await atelier(['submit', 'do it']);
    assert.equal(broken.code, 1, shown(broken));
    assert.match(broken.stderr, /the request may have reached it: look before trying again/);
  });

  it('refuses as bad usage a blank prompt file, a label key given twice and a URL that is not http(s)', async () => {
    const blank = join(tmp, 'blank.md');
    writeFileSync(blank, ' \n\t\n');
    const empty = await atelier(['submit', '--file', blank]);
    assert.equal(empty.code, 2, shown(empty));
    assert.equal(empty.stderr, 'atelier: the prompt is empty\n');
    const twice = await atelier(['list', '--label', 'a=1', '--label', 'a=2']);
    assert.equal(twice.code, 2, shown(twice));
    assert.match(twice.stderr, /label a is given twice/);
    // A token set in the wrong variable: said to be no URL, and not shown.
    const notUrl = await runCli(['list'], { ATELIER_URL: 'token-in-the-url-variable' });
    assert.equal(notUrl.code, 2, shown(notUrl));
    assert.equal(notUrl.stderr, 'atelier: the API URL (--url or ATELIER_URL) is not an http(s) URL\n');
  });

  it("shows the control characters of a server's error text as visible text, carriage returns too", async () => {
    handler = (_req, res) =>
      sendJson(res, 404, { statusCode: 404, message: 'no task \x1b]0;PWNED\x07\x1b[31mhere\rover' });
    const r = await atelier(['status', ID]);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stderr, `atelier: GET /v1/tasks/${ID} answered 404: no task ^[]0;PWNED^G^[[31mhere^Mover\n`);
  });
});
