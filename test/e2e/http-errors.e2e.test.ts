import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { encodeCursor } from '../../src/api/tasks/task-cursor';
import {
  call,
  waitForEnd,
  type ApiResponse,
  type ErrorBody,
  type RequestOptions,
  type Submitted,
} from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { insertTask } from '../support/task-rows';
import { startStack, type Stack } from '../support/stack';
import { testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

/** Marks every row a request below could create, so counting them is immune to other test files. */
const MARKER = `http-errors-${randomUUID()}`;

describe('bad requests over HTTP', () => {
  let stack: Stack;
  let authStack: Stack;
  let pool: Pool;
  let temporal: Connection;
  let client: Client;
  const workflowQueue = uniqueQueue('wf-http-errors');
  const authWorkflowQueue = uniqueQueue('wf-http-auth');
  const answered: { request: string; status: number; text: string }[] = [];

  before(async () => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    client = new Client({ connection: temporal, namespace: testEnv.namespace });
    [stack, authStack] = await Promise.all([
      startStack({ ATELIER_WORKFLOW_QUEUE: workflowQueue }),
      // Logging every request (info), so that what a request's log line holds can be checked.
      startStack({ ATELIER_WORKFLOW_QUEUE: authWorkflowQueue, ATELIER_API_TOKENS: 'tok1,tok2', LOG_LEVEL: 'info' }),
    ]);
  });

  after(async () => {
    try {
      await Promise.all([stack, authStack].filter((s) => s !== undefined).map((s) => stopStackCleanly(s)));
    } finally {
      await pool?.end();
      await temporal?.close();
    }
  });

  /** Every call goes through here, so the last test can check that none was answered with a 5xx. */
  async function send(target: Stack, method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const res = await call(target.baseUrl, method, path, options);
    answered.push({ request: `${method} ${path}`, status: res.status, text: res.text.slice(0, 300) });
    return res;
  }

  /** Rows any request of this file created in `tasks`. */
  async function markedTasks(): Promise<number> {
    const res = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE strpos(prompt, $1) > 0 OR strpos(idempotency_key, $1) > 0`,
      [MARKER],
    );
    return res.rows[0]?.n ?? -1;
  }

  /** Workflows started on a stack's workflow queue (Temporal visibility). */
  async function workflowsOn(queue: string): Promise<number> {
    return (await client.workflow.count(`TaskQueue = '${queue}'`)).count;
  }

  /** Asserts a 4xx JSON error with `status` that names `field` (when given), and that no task was created. */
  async function assertRejected(res: ApiResponse, status: number, field?: string): Promise<ErrorBody> {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, res.text);
    const body = res.json as ErrorBody;
    assert.equal(body.statusCode, status);
    assert.equal(typeof body.message, 'string');
    assert.ok(body.message.length > 0);
    if (field !== undefined) {
      assert.ok(
        body.fields?.some((f) => f.field === field && f.problems.length > 0),
        `the answer names the field ${field}: ${res.text}`,
      );
      assert.ok(body.message.includes(field), `the message names ${field}: ${body.message}`);
    }
    assert.equal(await markedTasks(), 0, `a rejected request created a task: ${res.text}`);
    return body;
  }

  const post = (body: Record<string, unknown>): Promise<ApiResponse> =>
    send(stack, 'POST', '/v1/tasks', { body: { idempotencyKey: `${MARKER}-${randomUUID()}`, ...body } });

  describe('POST /v1/tasks', () => {
    it('refuses a missing, empty, too long or NUL-carrying prompt', async () => {
      await assertRejected(await post({}), 400, 'prompt');
      await assertRejected(await post({ prompt: '' }), 400, 'prompt');
      const tooLong = await assertRejected(
        await post({ prompt: `${MARKER}${'x'.repeat(200_001 - MARKER.length)}` }),
        400,
        'prompt',
      );
      assert.match(tooLong.message, /200000/);
      await assertRejected(await post({ prompt: `${MARKER} before\u0000after` }), 400, 'prompt');
    });

    it('refuses fields of the wrong type or out of range', async () => {
      await assertRejected(await post({ prompt: 42 }), 400, 'prompt');
      await assertRejected(await post({ prompt: MARKER, labels: ['a:b'] }), 400, 'labels');
      await assertRejected(await post({ prompt: MARKER, labels: { team: 1 } }), 400, 'labels');
      await assertRejected(await post({ prompt: MARKER, labels: { team: { nested: 'x' } } }), 400, 'labels');
      await assertRejected(await post({ prompt: MARKER, priority: 'high' }), 400, 'priority');
      await assertRejected(await post({ prompt: MARKER, priority: 6 }), 400, 'priority');
      await assertRejected(await post({ prompt: MARKER, timeoutSeconds: 0 }), 400, 'timeoutSeconds');
      await assertRejected(await post({ prompt: MARKER, timeoutSeconds: 86_401 }), 400, 'timeoutSeconds');
      await assertRejected(await post({ prompt: MARKER, timeoutSeconds: 1.5 }), 400, 'timeoutSeconds');
      await assertRejected(await post({ prompt: MARKER, maxAttempts: 21 }), 400, 'maxAttempts');
      await assertRejected(await post({ prompt: MARKER, maxAttempts: '2' }), 400, 'maxAttempts');
      await assertRejected(await post({ prompt: MARKER, idempotencyKey: '' }), 400, 'idempotencyKey');
    });

    it('refuses null for an optional field, naming it, rather than taking it for absent', async () => {
      for (const field of ['repo', 'locks', 'agents', 'agent', 'labels', 'timeoutSeconds']) {
        await assertRejected(await post({ prompt: MARKER, [field]: null }), 400, field);
      }
      await assertRejected(await post({ prompt: MARKER, repo: { path: '/tmp', ref: 'main\u0000x' } }), 400, 'repo.ref');
    });

    it("refuses agent names that are only the object's built-in keys", async () => {
      for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
        await assertRejected(await post({ prompt: MARKER, agent: name }), 400, 'agent');
        await assertRejected(await post({ prompt: MARKER, agents: [name] }), 400, 'agents');
      }
    });

    it('refuses unknown fields', async () => {
      await assertRejected(await post({ prompt: MARKER, promt: 'typo' }), 400, 'promt');
      await assertRejected(await post({ prompt: MARKER, status: 'succeeded' }), 400, 'status');
    });

    it('refuses an unknown agent, naming the agents it knows', async () => {
      const body = await assertRejected(await post({ prompt: MARKER, agent: 'no-such-agent' }), 400, 'agent');
      assert.match(body.message, /no-such-agent/);
      assert.match(body.message, /stand-in/);
    });

    it('refuses a workdir that is relative, missing or not a directory', async () => {
      await assertRejected(await post({ prompt: MARKER, workdir: 'relative/dir' }), 400, 'workdir');
      await assertRejected(await post({ prompt: MARKER, workdir: `/nonexistent/${randomUUID()}` }), 400, 'workdir');
      await assertRejected(await post({ prompt: MARKER, workdir: '/etc/hostname' }), 400, 'workdir');
    });

    it('answers 400, not 500, to a body that is not JSON or not an object', async () => {
      await assertRejected(await send(stack, 'POST', '/v1/tasks', { rawBody: `{"prompt": "${MARKER}"` }), 400);
      await assertRejected(await send(stack, 'POST', '/v1/tasks', { rawBody: `"${MARKER}"` }), 400);
      await assertRejected(await send(stack, 'POST', '/v1/tasks', { rawBody: 'null' }), 400);
      await assertRejected(
        await send(stack, 'POST', '/v1/tasks', { rawBody: `[{"prompt": "${MARKER}"}]` }),
        400,
        'prompt',
      );
    });

    it('refuses the keys constructor, prototype and __proto__ anywhere, a label key too, naming where', async () => {
      const labelled = await assertRejected(
        await send(stack, 'POST', '/v1/tasks', {
          rawBody: `{"prompt": "${MARKER}", "labels": {"team": "docs", "constructor": "x"}}`,
        }),
        400,
      );
      assert.match(
        labelled.message,
        /^labels\.constructor: the keys constructor, prototype and __proto__ are not accepted/,
      );
      const planned = await assertRejected(
        await send(stack, 'POST', '/v1/plans', {
          rawBody: `{"prototype": 1, "tasks": [{"key": "a", "prompt": "${MARKER}", "labels": {"__proto__": "x"}}]}`,
        }),
        400,
      );
      assert.match(planned.message, /^prototype: .*; tasks\.0\.labels\.__proto__: /);
    });

    it('answers 413 to a body over the size limit', async () => {
      const res = await send(stack, 'POST', '/v1/tasks', { body: { prompt: `${MARKER}${'x'.repeat(1_100_000)}` } });
      await assertRejected(res, 413);
    });

    // A body is read only as JSON. One of another type used to reach the route as no body at all, and be
    // refused for its first missing field (`prompt must be a string`, for curl's form-encoded default).
    it('answers 415 naming Content-Type to a body not sent as JSON, on every route that takes a body', async () => {
      const text = JSON.stringify({ prompt: MARKER });
      const routes = [
        ['POST', '/v1/tasks'],
        ['POST', '/v1/plans'],
        ['PUT', '/v1/budget'],
        ['PUT', `/v1/tasks/${randomUUID()}/budget`],
      ];
      const types: [string, string][] = [
        ['text/plain', text],
        ['application/x-www-form-urlencoded', `prompt=${MARKER}`],
      ];
      for (const [method = '', path = ''] of routes) {
        for (const [type, rawBody] of types) {
          const refused = await assertRejected(
            await send(stack, method, path, { rawBody, headers: { 'content-type': type } }),
            415,
          );
          assert.equal(refused.error, 'Unsupported Media Type');
          assert.equal(
            refused.message,
            `Content-Type must be application/json: the body was sent as ${type}, and only JSON is read`,
          );
        }
      }
      // A body without any Content-Type.
      const untyped = await fetch(`${stack.baseUrl}/v1/tasks`, { method: 'POST', body: new Blob([text]) });
      assert.equal(untyped.status, 415);
      assert.match(((await untyped.json()) as ErrorBody).message, /^Content-Type must be .*sent without one/);
      // JSON in another charset: the body parser's own 415.
      const latin1 = await send(stack, 'POST', '/v1/tasks', {
        rawBody: text,
        headers: { 'content-type': 'application/json; charset=latin1' },
      });
      assert.match((await assertRejected(latin1, 415)).message, /unsupported charset "LATIN1"/);
      // An empty body is no body, whatever its type: its fields are named as ever.
      const empty = await send(stack, 'POST', '/v1/tasks', { rawBody: '', headers: { 'content-type': 'text/plain' } });
      await assertRejected(empty, 400, 'prompt');
      // A route that takes no body pays no heed to one.
      const cancel = await send(stack, 'POST', `/v1/tasks/${randomUUID()}/cancel`, {
        rawBody: 'x',
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(cancel.status, 404, cancel.text);
    });
  });

  describe('GET /v1/tasks', () => {
    const list = (query: string): Promise<ApiResponse> => send(stack, 'GET', `/v1/tasks?${query}`);

    it('refuses a bad status, limit or label', async () => {
      await assertRejected(await list('status=bogus'), 400, 'status');
      // Query strings are parsed flat: a bracketed key is an unknown parameter, named as sent.
      await assertRejected(await list('status[a]=b'), 400, 'status[a]');
      await assertRejected(await list('limit=0'), 400, 'limit');
      await assertRejected(await list('limit=201'), 400, 'limit');
      await assertRejected(await list('limit=ten'), 400, 'limit');
      await assertRejected(await list('limit=1&limit=2'), 400, 'limit');
      await assertRejected(await list('label=no-colon'), 400, 'label');
      await assertRejected(await list('label[k]=v'), 400, 'label[k]');
      await assertRejected(await list('label=a:%00'), 400, 'label');
    });

    it('refuses a cursor it did not hand out', async () => {
      await assertRejected(await list('cursor=garbage'), 400, 'cursor');
      await assertRejected(await list('cursor=a&cursor=b'), 400, 'cursor');
      // Well-formed cursors around values PostgreSQL would refuse: a bad date, a bad hour, a bad uuid.
      const id = randomUUID();
      for (const forged of [
        encodeCursor('2024-02-31 00:00:00+00', id),
        encodeCursor('2024-13-45 99:99:99', id),
        encodeCursor('2024-01-01 24:00:00+00', id),
        encodeCursor('2024-01-01 00:00:00+00', '-'.repeat(36)),
      ]) {
        await assertRejected(await list(`cursor=${forged}`), 400, 'cursor');
      }
      const fine = await list(`cursor=${encodeCursor('2024-02-29 23:59:59.999999+00', id)}`);
      assert.equal(fine.status, 200, fine.text);
    });

    it('refuses unknown query parameters', async () => {
      await assertRejected(await list('sort=asc'), 400, 'sort');
    });

    it('finds no task by a label named __proto__, which no task can carry', async () => {
      // Stored, not started: the last test counts the workflows this file's requests started.
      const label = randomUUID();
      const id = await insertTask(pool, { prompt: 'labelled' });
      await pool.query('UPDATE tasks SET labels = $2 WHERE id = $1', [id, { probe: label }]);
      const found = await list(`label=probe:${label}`);
      assert.equal((found.json as { items: unknown[] }).items.length, 1, 'the filter finds a task it names');
      const none = await list('label=__proto__:x');
      assert.equal(none.status, 200, none.text);
      assert.deepEqual((none.json as { items: unknown[] }).items, []);
      await assertRejected(await list('label=__proto__:x&label=__proto__:y'), 400, 'label');
    });
  });

  describe('GET /v1/tasks/:id/logs', () => {
    it('refuses an attempt that is not an integer from 1 to 999, saying so, answering JSON', async () => {
      const id = randomUUID();
      for (const attempt of ['x', '0', '-1', '1.5', '1&attempt=2', '1000']) {
        const body = await assertRejected(
          await send(stack, 'GET', `/v1/tasks/${id}/logs?attempt=${attempt}`),
          400,
          'attempt',
        );
        assert.match(body.message, /attempt must be an integer from 1 to 999/);
      }
    });

    it('refuses a bad follow value, and a query parameter it does not take (a typo of one)', async () => {
      const id = randomUUID();
      await assertRejected(await send(stack, 'GET', `/v1/tasks/${id}/logs?follow=yes`), 400, 'follow');
      await assertRejected(await send(stack, 'GET', `/v1/tasks/${id}/logs?atempt=2`), 400, 'atempt');
      await assertRejected(await send(stack, 'GET', `/v1/tasks/${id}/logs?folow=1`), 400, 'folow');
    });
  });

  it('created no task and started no workflow for any rejected request', async () => {
    assert.equal(await markedTasks(), 0);
    // A valid task, as a control: it must show up in both counts, so they can see a task at all.
    const prompt = `${MARKER}${'y'.repeat(200_000 - MARKER.length)}`;
    const res = await send(stack, 'POST', '/v1/tasks', { body: { prompt } });
    assert.equal(res.status, 201, res.text);
    const task = await waitForEnd(stack.baseUrl, (res.json as Submitted).id);
    assert.equal(task.status, 'succeeded', JSON.stringify(task.error));
    assert.equal(task.result?.output, `${prompt}\n`);
    assert.equal(await markedTasks(), 1);
    const started = await waitFor('the control workflow to be visible', async () => {
      const n = await workflowsOn(workflowQueue);
      return n > 0 ? n : undefined;
    });
    assert.equal(started, 1, 'only the control task started a workflow');
  });

  describe('without ATELIER_API_TOKENS, on loopback', () => {
    /** One call with headers fetch would not send as given (Host). */
    const rawCall = (path: string, method: string, headers: Record<string, string>) =>
      new Promise<{ status: number; body: ErrorBody }>((resolve, reject) => {
        const req = request(`${stack.baseUrl}${path}`, { method, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            answered.push({ request: `${method} ${path}`, status: res.statusCode ?? 0, text: text.slice(0, 300) });
            const json = /^application\/json/.test(res.headers['content-type'] ?? '');
            resolve({ status: res.statusCode ?? 0, body: (json ? JSON.parse(text) : {}) as ErrorBody });
          });
        });
        req.on('error', reject);
        req.end(method === 'POST' ? JSON.stringify({ prompt: MARKER }) : undefined);
      });
    const port = () => new URL(stack.baseUrl).port;

    it("refuses a browser's call for another site's page (DNS rebinding, cross-site posts) with 403, starting nothing", async () => {
      const before = await markedTasks();
      const json = { 'content-type': 'application/json' };
      const cases: [string, Record<string, string>, 'Host' | 'Origin'][] = [
        ['a rebound domain', { ...json, host: `evil.example:${port()}` }, 'Host'],
        ['a rebound domain, same origin', { ...json, host: 'evil.example', origin: 'http://evil.example' }, 'Host'],
        ["another site's page", { ...json, origin: 'https://evil.example' }, 'Origin'],
        ['a sandboxed page or a file', { ...json, origin: 'null' }, 'Origin'],
      ];
      for (const [what, headers, named] of cases) {
        for (const [method, path] of [
          ['POST', '/v1/tasks'],
          ['GET', '/v1/tasks'],
          ['POST', '/V1/agents/stand-in/breaker/reset'],
        ] as const) {
          const res = await rawCall(path, method, headers);
          assert.equal(res.status, 403, `${what}, ${method} ${path}: ${JSON.stringify(res.body)}`);
          assert.match(res.body.message, new RegExp(`the ${named} header names another machine`));
        }
      }
      assert.equal(await markedTasks(), before, 'no refused call created a task');
    });

    it('serves calls to a loopback name, from a loopback page, and probes and scrapes that name one', async () => {
      const looks: Record<string, string>[] = [
        { host: `localhost:${port()}` },
        { host: `[::1]:${port()}` },
        { host: `127.0.0.1:${port()}`, origin: `http://localhost:${port()}` },
        { host: `127.0.0.1:${port()}`, origin: `http://127.0.0.1:${port()}` },
      ];
      for (const headers of looks) {
        const res = await rawCall('/v1/tasks?limit=1', 'GET', headers);
        assert.equal(res.status, 200, `${JSON.stringify(headers)}: ${JSON.stringify(res.body)}`);
      }
      for (const path of ['/metrics', '/health/live', '/health/ready']) {
        assert.equal((await rawCall(path, 'GET', { host: `127.0.0.1:${port()}` })).status, 200, path);
      }
    });

    it("refuses a scrape or a probe for another site's page too: metrics and health tell what runs", async () => {
      for (const path of ['/metrics', '/health/live', '/health/ready']) {
        const res = await rawCall(path, 'GET', { host: `evil.example:${port()}` });
        assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.message, /the Host header names another machine/);
      }
    });
  });

  describe('with ATELIER_API_TOKENS set', () => {
    it('answers 401 without a valid bearer token', async () => {
      const cases: [string, Record<string, string>][] = [
        ['no token', {}],
        ['wrong token', { authorization: 'Bearer tok3' }],
        ['a prefix of a token', { authorization: 'Bearer tok' }],
        ['no scheme', { authorization: 'tok1' }],
        ['another scheme', { authorization: 'Basic dG9rMTp4' }],
        ['two tokens', { authorization: 'Bearer tok1 tok2' }],
      ];
      for (const [what, headers] of cases) {
        const res = await send(authStack, 'GET', '/v1/tasks', { headers });
        assert.equal(res.status, 401, `${what}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.equal((res.json as ErrorBody).statusCode, 401);
      }
      const get = await send(authStack, 'GET', `/v1/tasks/${randomUUID()}`);
      assert.equal(get.status, 401);
      // Routes match whatever the case of the path: so does the token check.
      for (const path of ['/V1/tasks', '/v1/Tasks', '/V1/agents']) {
        assert.equal((await send(authStack, 'GET', path)).status, 401, path);
      }
      const cancel = await send(authStack, 'POST', `/v1/tasks/${randomUUID()}/cancel`);
      assert.equal(cancel.status, 401);
    });

    it('starts nothing for a request without a valid token', async () => {
      const res = await send(authStack, 'POST', '/v1/tasks', { body: { prompt: MARKER }, token: 'wrong' });
      assert.equal(res.status, 401, res.text);
      assert.equal((await pool.query('SELECT count(*)::int AS n FROM tasks WHERE prompt = $1', [MARKER])).rows[0].n, 0);
    });

    it('serves either configured token', async () => {
      for (const token of ['tok1', 'tok2']) {
        const res = await send(authStack, 'GET', '/v1/tasks?limit=1', { token });
        assert.equal(res.status, 200, `${token}: ${res.text}`);
      }
      const lower = await send(authStack, 'GET', '/v1/tasks?limit=1', { headers: { authorization: 'bearer tok1' } });
      assert.equal(lower.status, 200, lower.text);
      const created = await send(authStack, 'POST', '/v1/tasks', { body: { prompt: 'authorised' }, token: 'tok2' });
      assert.equal(created.status, 201, created.text);
      const task = await waitForEnd(authStack.baseUrl, (created.json as Submitted).id, 30_000, 'tok1');
      assert.equal(task.status, 'succeeded');
      assert.equal(task.result?.output, 'authorised\n');
    });

    it('logs no credential a request carries, a proxy’s forwarded token included', async () => {
      const secrets = {
        authorization: 'Bearer tok1',
        'proxy-authorization': 'Basic cHJveHktc2VjcmV0',
        'x-forwarded-access-token': 'fwd-secret-7731',
      };
      const res = await send(authStack, 'GET', '/v1/tasks?limit=0&probe=logged-headers', { headers: secrets });
      assert.equal(res.status, 400, res.text);
      const line = await waitFor('the request’s log line', () =>
        authStack
          .output()
          .split('\n')
          .find((l) => l.includes('probe=logged-headers')),
      );
      for (const value of ['tok1', 'cHJveHktc2VjcmV0', 'fwd-secret-7731']) assert.ok(!line.includes(value), line);
      assert.match(line, /"user-agent"/, 'the harmless headers stay');
    });

    it('keeps health and docs open without a token', async () => {
      for (const path of ['/health/live', '/health/ready', '/docs/openapi.json']) {
        const res = await send(authStack, 'GET', path);
        assert.equal(res.status, 200, `${path}: ${res.text}`);
      }
    });
  });

  it('never answered with a server error', () => {
    assert.ok(answered.length > 50, `requests were made: ${answered.length}`);
    const errors = answered.filter((a) => a.status >= 500);
    assert.deepEqual(errors, []);
    for (const s of [stack, authStack]) assert.ok(!s.output().includes('unhandled error'), s.output());
  });
});
