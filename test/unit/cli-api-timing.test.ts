import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ApiClient, ConnectionError } from '../../src/cli/api-client';
import { EXIT } from '../../src/cli/exit-codes';
import { atelierInProcess as atelier, sendJson, stubApi, type StubApi } from '../support/cli-in-process';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const running = {
  id: ID,
  status: 'running',
  agent: 'echo',
  model: null,
  priority: 3,
  labels: {},
  createdAt: new Date().toISOString(),
  startedAt: new Date().toISOString(),
  finishedAt: null,
  error: null,
  links: { self: `/v1/tasks/${ID}`, logs: `/v1/tasks/${ID}/logs`, temporalUi: 'http://ui/x' },
  attempts: [{ attempt: 1, agent: 'echo', status: 'running' }],
};

/** How long the CLI waits on the API, and what it does when that runs out (short waits, given in `timing`). */
describe('CLI: waiting on the API', () => {
  let api: StubApi;
  let url: string;
  let handler: Handler;

  before(async () => {
    api = await stubApi((req, res) => handler(req, res));
    url = api.url;
  });
  after(() => api.close());

  it('takes an API that does not begin to answer in time for an unreachable one', async () => {
    const asked: string[] = [];
    handler = (req) => asked.push(req.url ?? ''); // never answers
    const r = await atelier(['status', ID], url);
    assert.equal(r.code, EXIT.error);
    assert.deepEqual(asked, [`/v1/tasks/${ID}`]);
    assert.match(r.stderr, /no answer within 0\.3 s/);
  });

  it('logs -f follows anew, after the last event it printed, a stream gone silent', async () => {
    const lastEventIds: (string | undefined)[] = [];
    handler = (req, res) => {
      lastEventIds.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (lastEventIds.length === 1) {
        // One chunk, then nothing at all, not even a keep-alive: a connection dropped without a word.
        res.write(`id: 1.1.1\nevent: log\ndata: ${JSON.stringify({ seq: 1, text: 'first\n' })}\n\n`);
        return;
      }
      res.write(`id: 1.1.2\nevent: log\ndata: ${JSON.stringify({ seq: 2, text: 'second\n' })}\n\n`);
      res.end(`event: end\ndata: ${JSON.stringify({ status: 'succeeded', run: 1 })}\n\n`);
    };
    const r = await atelier(['logs', '-f', ID], url);
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.equal(r.stdout, 'first\nsecond\n');
    assert.deepEqual(lastEventIds, [undefined, '1.1.1']);
  });

  it('submit --wait ends its progress line before it prints an error', async () => {
    let polls = 0;
    handler = (req, res) => {
      if (req.method === 'POST') {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: ID, status: 'queued', workflowId: `task-${ID}`, links: running.links }));
        return;
      }
      polls += 1;
      if (polls === 1) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(running));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statusCode: 404, message: `task ${ID} not found`, error: 'Not Found' }));
    };
    const r = await atelier(['submit', '--wait', 'do it'], url, { ttyStderr: true });
    assert.equal(r.code, EXIT.waitFailed);
    const [progress, error] = r.stderr
      .split('\n')
      .filter((line) => line.includes('running') || line.includes('not found'));
    assert.match(progress ?? '', /running/, r.stderr);
    assert.match(error ?? '', /^atelier: .*not found/, JSON.stringify(r.stderr));
  });

  it('suggests setting the URL only while the API has not answered: later, it says the API went away', async () => {
    const restarting = await stubApi((_req, res) => sendJson(res, 200, { items: [] }));
    const client = new ApiClient(restarting.url);
    await client.json('GET', '/v1/tasks');
    restarting.close();
    await assert.rejects(
      client.json('GET', '/v1/tasks'),
      (err: Error) =>
        err instanceof ConnectionError &&
        /\(it answered before and has gone away, a restart perhaps; tasks go on without it\)$/.test(err.message),
    );
    await assert.rejects(new ApiClient(restarting.url).json('GET', '/v1/tasks'), /\(set ATELIER_URL or --url\)$/);
  });
});
