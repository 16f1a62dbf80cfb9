import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { runCli, shown } from '../support/cli-process';

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

const task = (status: string) => ({
  id: ID,
  status,
  agent: 'echo',
  model: null,
  priority: 3,
  labels: {},
  createdAt: new Date().toISOString(),
  startedAt: null,
  finishedAt: null,
  error: null,
  links: { self: `/v1/tasks/${ID}`, logs: `/v1/tasks/${ID}/logs`, temporalUi: 'http://ui/x' },
  attempts: [],
});

/**
 * The CLI against API servers that lack the newer endpoints (no /v1/plans, no /v1/workers, logs
 * without ?follow), against a log stream that drops or an API that restarts, and with tokens it must
 * keep to itself: a stub server plays each part.
 */
describe('the atelier CLI against older or flaky servers', { timeout: 60_000 }, () => {
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

  it('--help names ATELIER_TOKEN and never prints its value', async () => {
    const r = await runCli(['--help'], { ATELIER_URL: url, ATELIER_TOKEN: 'token-help-must-hide' });
    assert.equal(r.code, 0, `exit ${r.code}`);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('token-help-must-hide'), 'the token is printed');
    assert.match(r.stdout, /--token <token>\s+bearer token for the API \(env: ATELIER_TOKEN\)/);
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
});
