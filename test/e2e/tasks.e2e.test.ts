import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Pool } from 'pg';
import { call, getTask, submit, waitForEnd, type ErrorBody, type TaskList } from '../support/http-api';
import { answerSchema, assertDescribes, openApiDoc } from '../support/openapi';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { testEnv, uniqueQueue } from '../support/test-env';
import { processAlive, waitFor } from '../support/wait-for';

const { EventType } = proto.api.enums.v1;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('tasks over HTTP against the whole service', () => {
  let stack: Stack;
  let pool: Pool;
  let temporal: Connection;
  let client: Client;
  let tmp: string;
  const workflowQueue = uniqueQueue('wf-tasks-e2e');

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-tasks-e2e-'));
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 4 });
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    client = new Client({ connection: temporal, namespace: testEnv.namespace });
    stack = await startStack({
      ATELIER_WORKFLOW_QUEUE: workflowQueue,
      ATELIER_TEST_VISIBLE: 'visible-value',
      SECRET_NOT_PASSED: 'secret-value',
    });
  });

  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      await pool?.end();
      await temporal?.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('runs a task to success and records it in PostgreSQL', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: '@print out-line\n@stderr err-line', labels: { suite: 'tasks-e2e' } },
    });
    assert.equal(res.status, 201, res.text);
    const submitted = res.json as {
      id: string;
      status: string;
      workflowId: string;
      runId: string;
      links: Record<string, string>;
    };
    assert.match(submitted.id, UUID);
    assert.equal(submitted.status, 'queued');
    assert.equal(submitted.workflowId, `task-${submitted.id}`);
    assert.match(submitted.runId, /^[0-9a-f-]{36}$/);
    assert.equal(submitted.links.self, `/v1/tasks/${submitted.id}`);
    assert.equal(submitted.links.logs, `/v1/tasks/${submitted.id}/logs`);
    assert.match(submitted.links.temporalUi ?? '', /^https?:\/\/.+\/namespaces\/default\/workflows\/task-/);
    assert.ok(submitted.links.temporalUi?.includes(`/workflows/${submitted.workflowId}/${submitted.runId}/`));

    const task = await waitForEnd(stack.baseUrl, submitted.id);
    assert.equal(task.status, 'succeeded', JSON.stringify(task));
    assert.deepEqual(task.result, {
      output: 'out-line\n',
      exitCode: 0,
      agent: 'stand-in',
      // A plain-text agent reports no cost, tokens or session.
      costUsd: null,
      inputTokens: null,
      cachedInputTokens: null,
      outputTokens: null,
      turns: null,
      sessionId: null,
    });
    assert.equal(task.error, null);
    assert.equal(task.agent, 'stand-in');
    assert.deepEqual(task.labels, { suite: 'tasks-e2e' });
    assert.equal(task.runId, submitted.runId);
    assert.ok(task.startedAt && task.finishedAt && task.finishedAt >= task.startedAt);
    assert.equal(task.attempts.length, 1);
    const [attempt] = task.attempts;
    assert.equal(attempt?.number, 1);
    assert.match(attempt?.worker ?? '', /^agent-worker:\d+-[0-9a-f]+@/);
    assert.equal(attempt?.exitCode, 0);
    assert.equal(attempt?.failureClass, 'succeeded');
    assert.equal(attempt?.error, null);

    const logs = await call(stack.baseUrl, 'GET', `/v1/tasks/${submitted.id}/logs`);
    assert.equal(logs.status, 200);
    assert.match(logs.headers.get('content-type') ?? '', /^text\/plain/);
    assert.ok(logs.text.includes('out-line\n'), logs.text);
    assert.ok(logs.text.includes('err-line\n'), logs.text);
    const firstAttempt = await call(stack.baseUrl, 'GET', `/v1/tasks/${submitted.id}/logs?attempt=1`);
    assert.equal(firstAttempt.text, logs.text);
    const noSuchAttempt = await call(stack.baseUrl, 'GET', `/v1/tasks/${submitted.id}/logs?attempt=2`);
    assert.equal(noSuchAttempt.status, 200);
    assert.equal(noSuchAttempt.text, '');

    const row = (await pool.query('SELECT * FROM tasks WHERE id = $1', [submitted.id])).rows[0];
    assert.equal(row.status, 'succeeded');
    assert.equal(row.prompt, '@print out-line\n@stderr err-line');
    assert.equal(row.workflow_id, submitted.workflowId);
    assert.equal(row.run_id, submitted.runId);
    assert.equal(row.result_attempt, 1);
    assert.equal(row.result_exit_code, 0);
    assert.equal(row.error_class, null);
    const attempts = (await pool.query('SELECT * FROM attempts WHERE task_id = $1', [submitted.id])).rows;
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0].exit_code, 0);
    assert.equal(attempts[0].failure_class, 'succeeded');
    assert.equal(attempts[0].output, 'out-line\n');
    assert.ok(attempts[0].finished_at instanceof Date);
    const streams = (
      await pool.query('SELECT DISTINCT stream FROM task_logs WHERE task_id = $1 ORDER BY stream', [submitted.id])
    ).rows;
    assert.deepEqual(
      streams.map((r) => r.stream),
      ['stderr', 'stdout'],
    );
    const events = (
      await pool.query('SELECT kind, terminal FROM task_events WHERE task_id = $1 ORDER BY id', [submitted.id])
    ).rows;
    assert.deepEqual(
      events.map((e) => e.kind),
      ['submitted', 'attempt_started', 'attempt_finished', 'succeeded'],
    );
    assert.deepEqual(
      events.filter((e) => e.terminal).map((e) => e.kind),
      ['succeeded'],
    );
    // Started at today's code level: the workflow asks no patch, so its history holds no marker and no
    // TemporalChangeVersion upsert (each a write the Temporal server would make for every task).
    const handle = client.workflow.getHandle(submitted.workflowId, submitted.runId);
    await handle.result();
    const history = await handle.fetchHistory();
    const types = (history.events ?? []).map((e) => EventType[e.eventType ?? 0]);
    assert.deepEqual(
      types.filter((t) => t === 'EVENT_TYPE_MARKER_RECORDED' || t === 'EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES'),
      [],
      types.join(' '),
    );
  });

  it('fails a task whose agent keeps exiting non-zero, after maxAttempts attempts', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@stderr boom\n@exit 3', maxAttempts: 2 });
    const task = await waitForEnd(stack.baseUrl, id);
    assert.equal(task.status, 'failed', JSON.stringify(task));
    assert.equal(task.error?.class, 'nonzero_exit');
    assert.match(task.error?.message ?? '', /code 3/);
    assert.equal(task.result, null);
    assert.equal(task.maxAttempts, 2);
    assert.deepEqual(
      task.attempts.map((a) => [a.number, a.exitCode, a.failureClass]),
      [
        [1, 3, 'nonzero_exit'],
        [2, 3, 'nonzero_exit'],
      ],
    );
    const one = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs?attempt=1`);
    assert.equal(one.text, 'boom\n');
    const all = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs`);
    assert.equal(all.text, 'boom\nboom\n');
    const terminal = (await pool.query('SELECT kind FROM task_events WHERE task_id = $1 AND terminal', [id])).rows;
    assert.deepEqual(
      terminal.map((e) => e.kind),
      ['failed'],
    );
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [id])).rows[0].n, 2);
  });

  it('cancels a running task: 202, status cancelled, and the agent process is gone', async () => {
    const pidFile = join(tmp, `agent-${randomUUID()}.pid`);
    const { id } = await submit(stack.baseUrl, { prompt: `@pidfile ${pidFile}\n@hang` });
    const pid = await waitFor('the agent to write its pid', () =>
      existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '' ? Number(readFileSync(pidFile, 'utf8')) : undefined,
    );
    assert.ok(processAlive(pid), 'the agent runs before the cancel');
    assert.equal((await getTask(stack.baseUrl, id)).status, 'running');

    const res = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/cancel`);
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.json, { id, status: 'cancelling' });

    const task = await waitForEnd(stack.baseUrl, id);
    assert.equal(task.status, 'cancelled', JSON.stringify(task));
    assert.equal(task.error?.class, 'cancelled');
    // The workflow waits for the agent worker to kill the process group before recording `cancelled`.
    assert.equal(processAlive(pid), false, `agent ${pid} still runs after the task was cancelled`);
    assert.equal(task.attempts[0]?.failureClass, 'cancelled');

    const again = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/cancel`);
    assert.equal(again.status, 202);
    assert.deepEqual(again.json, { id, status: 'cancelled' });
    // The run ends on the attempt the cancel stopped, though the workflow names the one before (0 here).
    const terminal = await pool.query('SELECT kind, attempt FROM task_events WHERE task_id = $1 AND terminal', [id]);
    assert.deepEqual(terminal.rows, [{ kind: 'cancelled', attempt: 1 }]);
    assert.equal(task.attempts[0]?.number, 1);
  });

  it('serves a log of many chunks whole and in order, over several reads (attempts, then chunks)', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@print first' });
    await waitForEnd(stack.baseUrl, id);
    // 1,000 more chunks across attempts 2 and 3 (as a long run stores them), out of order in the table.
    const chunks = Array.from({ length: 1000 }, (_, i) => ({ attempt: 2 + (i % 2), seq: Math.floor(i / 2) }));
    await pool.query(
      `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data)
       SELECT $1, 1, a, s, 'stdout', 'a' || a || 's' || s || E'\n' FROM unnest($2::int[], $3::int[]) AS c(a, s)`,
      [id, chunks.map((c) => c.attempt).reverse(), chunks.map((c) => c.seq).reverse()],
    );
    const expected = (attempt: number) => Array.from({ length: 500 }, (_, seq) => `a${attempt}s${seq}\n`).join('');
    const all = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs`);
    assert.equal(all.status, 200);
    assert.equal(all.text, `first\n${expected(2)}${expected(3)}`);
    const third = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}/logs?attempt=3`);
    assert.equal(third.text, expected(3));
  });

  it('refuses to cancel a task that already finished (409)', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: 'done quickly' });
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
    const res = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/cancel`);
    assert.equal(res.status, 409, res.text);
    assert.match((res.json as ErrorBody).message, /already succeeded/);
  });

  it('runs one task for one idempotency key: 201, then 200 with the same task', async () => {
    const key = `idem-${randomUUID()}`;
    const prompt = `idempotent ${key}`;
    const first = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt, idempotencyKey: key } });
    assert.equal(first.status, 201, first.text);
    const second = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt, idempotencyKey: key } });
    assert.equal(second.status, 200, second.text);
    const a = first.json as { id: string; workflowId: string; runId: string };
    const b = second.json as { id: string; workflowId: string; runId: string };
    assert.equal(b.id, a.id);
    assert.equal(b.workflowId, a.workflowId);
    assert.equal(b.runId, a.runId);

    assert.equal((await waitForEnd(stack.baseUrl, a.id)).status, 'succeeded');
    const third = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt, idempotencyKey: key } });
    assert.equal(third.status, 200);
    assert.equal((third.json as { id: string; status: string }).id, a.id);
    assert.equal((third.json as { id: string; status: string }).status, 'succeeded');
    // The key with another request: refused, naming the key, and nothing stored or started.
    const other = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: `${prompt}!`, idempotencyKey: key },
    });
    assert.equal(other.status, 422, other.text);
    assert.deepEqual(
      (other.json as ErrorBody & { fields: { field: string }[] }).fields.map((f) => f.field),
      ['idempotencyKey'],
    );

    const rows = (await pool.query('SELECT id FROM tasks WHERE idempotency_key = $1 OR prompt = $2', [key, prompt]))
      .rows;
    assert.deepEqual(
      rows.map((r) => r.id),
      [a.id],
    );
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [a.id])).rows[0].n, 1);
    const runs = await waitFor('the workflow to show as closed in Temporal visibility', async () => {
      const found = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${a.workflowId}'` })) found.push(wf);
      return found.length > 0 && found.every((wf) => wf.status.name === 'COMPLETED') ? found : undefined;
    });
    assert.deepEqual(
      runs.map((wf) => wf.runId),
      [a.runId],
    );
  });

  it('creates one task when the same idempotency key arrives concurrently', async () => {
    const key = `idem-race-${randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt: 'race', idempotencyKey: key } }),
      ),
    );
    assert.deepEqual(
      responses.map((r) => r.status).sort(),
      [200, 200, 200, 200, 200, 201],
      responses.map((r) => r.text).join('\n'),
    );
    const ids = new Set(responses.map((r) => (r.json as { id: string }).id));
    const runIds = new Set(responses.map((r) => (r.json as { runId: string }).runId));
    assert.equal(ids.size, 1);
    assert.equal(runIds.size, 1);
    const [id] = [...ids] as [string];
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
    assert.equal(
      (await pool.query('SELECT count(*)::int AS n FROM tasks WHERE idempotency_key = $1', [key])).rows[0].n,
      1,
    );
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [id])).rows[0].n, 1);
  });

  it('lists tasks newest first, filtered by status and labels, in pages that cover each once', async () => {
    const run = randomUUID();
    const created: string[] = [];
    for (let i = 0; i < 7; i += 1) {
      const failing = i === 3;
      const { id } = await submit(stack.baseUrl, {
        prompt: failing ? '@exit 1' : `list item ${i}`,
        maxAttempts: 1,
        labels: { run, parity: i % 2 === 0 ? 'even' : 'odd' },
      });
      created.push(id);
    }
    for (const id of created) await waitForEnd(stack.baseUrl, id);
    const newestFirst = [...created].reverse();

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/v1/tasks?label=${encodeURIComponent(`run:${run}`)}&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await call(stack.baseUrl, 'GET', query);
      assert.equal(res.status, 200, res.text);
      const page = res.json as TaskList;
      assert.ok(page.items.length <= 3);
      for (const item of page.items) assert.equal(item.labels.run, run);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
      pages += 1;
      assert.ok(pages <= 5, 'pagination ends');
    } while (cursor !== null);
    assert.equal(pages, 3);
    assert.deepEqual(seen, newestFirst);

    const all = (await call(stack.baseUrl, 'GET', `/v1/tasks?label=run:${run}`)).json as TaskList;
    assert.deepEqual(
      all.items.map((t) => t.id),
      newestFirst,
    );
    assert.equal(all.nextCursor, null);
    const createdAt = all.items.map((t) => t.createdAt);
    assert.deepEqual(createdAt, [...createdAt].sort().reverse());

    const failed = (await call(stack.baseUrl, 'GET', `/v1/tasks?status=failed&label=run:${run}`)).json as TaskList;
    assert.deepEqual(
      failed.items.map((t) => [t.id, t.status, t.error?.class]),
      [[created[3], 'failed', 'nonzero_exit']],
    );
    const succeeded = (await call(stack.baseUrl, 'GET', `/v1/tasks?status=succeeded&label=run:${run}&limit=200`))
      .json as TaskList;
    assert.deepEqual(
      succeeded.items.map((t) => t.id),
      newestFirst.filter((id) => id !== created[3]),
    );
    const odd = (await call(stack.baseUrl, 'GET', `/v1/tasks?label=run:${run}&label=parity:odd`)).json as TaskList;
    assert.deepEqual(
      odd.items.map((t) => t.id),
      [created[5], created[3], created[1]],
    );
    const none = (await call(stack.baseUrl, 'GET', `/v1/tasks?label=run:${run}&status=running`)).json as TaskList;
    assert.deepEqual(none, { items: [], nextCursor: null });
    // Two values of one key would match no task: refused, rather than one of them dropped.
    const twice = await call(stack.baseUrl, 'GET', `/v1/tasks?label=run:${run}&label=parity:odd&label=parity:even`);
    assert.equal(twice.status, 400, twice.text);
    assert.deepEqual(
      (twice.json as ErrorBody).fields?.map((f) => f.field),
      ['label'],
    );
  });

  it('answers 404 for tasks that do not exist', async () => {
    for (const id of [randomUUID(), 'not-a-uuid', '1%3B%20DROP%20TABLE%20tasks']) {
      for (const [method, path] of [
        ['GET', `/v1/tasks/${id}`],
        ['GET', `/v1/tasks/${id}/logs`],
        ['POST', `/v1/tasks/${id}/cancel`],
      ] as const) {
        const res = await call(stack.baseUrl, method, path);
        assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path}`);
        assert.equal((res.json as ErrorBody).statusCode, 404);
      }
    }
  });

  for (const agent of ['stand-in', 'stand-in-arg']) {
    it(`passes a prompt with shell metacharacters as data (${agent})`, async () => {
      const marker = `/tmp/atelier-pwned-${randomUUID()}`;
      const prompt = `; touch ${marker} && echo $(id) | cat \`touch ${marker}\` '"' > ${marker}`;
      const { id } = await submit(stack.baseUrl, { prompt, agent });
      const task = await waitForEnd(stack.baseUrl, id);
      assert.equal(task.status, 'succeeded', JSON.stringify(task));
      assert.equal(task.result?.output, `${prompt}\n`);
      assert.equal(existsSync(marker), false, `${marker} was created: the prompt went through a shell`);
    });
  }

  it('gives an agent only the environment its profile allows', async () => {
    const { id } = await submit(stack.baseUrl, {
      agent: 'stand-in-env',
      prompt: ['ATELIER_TEST_VISIBLE', 'SECRET_NOT_PASSED', 'STAND_IN_FIXED', 'DATABASE_URL']
        .map((n) => `@echo-env ${n}`)
        .join('\n'),
    });
    const task = await waitForEnd(stack.baseUrl, id);
    assert.equal(task.status, 'succeeded', JSON.stringify(task));
    // The agent printed the values it was given, which its stored output masks (only those values are).
    assert.equal(
      task.result?.output,
      'ATELIER_TEST_VISIBLE=[redacted:ATELIER_TEST_VISIBLE]\nSECRET_NOT_PASSED unset\n' +
        'STAND_IN_FIXED=[redacted:STAND_IN_FIXED]\nDATABASE_URL unset\n',
    );

    // A profile without envPassthrough gets the default allow-list, which holds no secrets either.
    const other = await submit(stack.baseUrl, {
      prompt: ['SECRET_NOT_PASSED', 'ATELIER_TEST_VISIBLE', 'DATABASE_URL'].map((n) => `@echo-env ${n}`).join('\n'),
    });
    const plain = await waitForEnd(stack.baseUrl, other.id);
    assert.equal(plain.result?.output, 'SECRET_NOT_PASSED unset\nATELIER_TEST_VISIBLE unset\nDATABASE_URL unset\n');
  });

  it('names the task and the attempt to its agent, unmasked', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@echo-env ATELIER_TASK_ID\n@echo-env ATELIER_ATTEMPT' });
    const task = await waitForEnd(stack.baseUrl, id);
    assert.equal(task.status, 'succeeded', JSON.stringify(task));
    assert.equal(task.result?.output, `ATELIER_TASK_ID=${id}\nATELIER_ATTEMPT=1\n`);
  });

  it('reports live and ready with every dependency up', async () => {
    const live = await call(stack.baseUrl, 'GET', '/health/live');
    assert.equal(live.status, 200);
    assert.equal((live.json as { status: string }).status, 'ok');
    const ready = await call(stack.baseUrl, 'GET', '/health/ready');
    assert.equal(ready.status, 200, ready.text);
    const body = ready.json as {
      info: Record<string, { status: string }>;
      workers: Record<string, { taskQueue: string; pollers?: number }>;
    };
    assert.deepEqual(Object.keys(body.info).sort(), ['postgres', 'temporal'], ready.text);
    for (const key of ['postgres', 'temporal']) assert.equal(body.info[key]?.status, 'up', `${key}: ${ready.text}`);
    // Who polls is reported beside the checks (test/e2e/health.e2e.test.ts: it never fails readiness).
    assert.equal(body.workers.workflow?.taskQueue, workflowQueue);
    for (const queue of ['workflow', 'agent']) assert.ok((body.workers[queue]?.pollers ?? 0) >= 1, ready.text);
  });

  it('serves an OpenAPI document describing the tasks API', async () => {
    const res = await call(stack.baseUrl, 'GET', '/docs/openapi.json');
    assert.equal(res.status, 200);
    const doc = res.json as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.match(doc.openapi, /^3\./);
    assert.ok(doc.paths['/v1/tasks']?.post, 'POST /v1/tasks is documented');
    assert.ok(doc.paths['/v1/tasks']?.get, 'GET /v1/tasks is documented');
    assert.ok(doc.paths['/v1/tasks/{id}']?.get, 'GET /v1/tasks/{id} is documented');
    assert.ok(doc.paths['/v1/tasks/{id}/cancel']?.post, 'POST /v1/tasks/{id}/cancel is documented');
    assert.ok(doc.paths['/v1/tasks/{id}/logs']?.get, 'GET /v1/tasks/{id}/logs is documented');
    interface Operation {
      responses: Record<string, { content?: Record<string, unknown> }>;
      parameters?: { name: string; in: string }[];
    }
    const logs = doc.paths['/v1/tasks/{id}/logs']?.get as Operation;
    assert.ok(logs.responses['200']?.content?.['text/event-stream'], 'the log stream is described as SSE');
    assert.ok(
      logs.parameters?.some((p) => p.in === 'header' && p.name === 'Last-Event-ID'),
      'Last-Event-ID is described',
    );
    // What docs/api.md says the plan routes answer, the API description says too.
    const codes = (path: string, method: string) =>
      Object.keys((doc.paths[path]?.[method] as Operation | undefined)?.responses ?? {}).sort();
    const submitCodes = ['200', '201', '400', '401', '403', '415', '422', '429', '500', '503'];
    assert.deepEqual(codes('/v1/plans', 'post'), submitCodes);
    assert.deepEqual(codes('/v1/tasks', 'post'), submitCodes);
    assert.deepEqual(codes('/v1/tasks', 'get'), ['200', '400', '401', '403']);
    assert.deepEqual(codes('/v1/tasks/{id}', 'get'), ['200', '401', '403', '404']);
    assert.deepEqual(codes('/v1/plans/{id}', 'get'), ['200', '401', '403', '404']);
    assert.deepEqual(codes('/v1/plans/{id}/cancel', 'post'), ['202', '401', '403', '404', '409', '503']);
    for (const path of ['/v1/tasks/{id}/cancel', '/v1/tasks/{id}/retry', '/v1/tasks/{id}/reset']) {
      assert.deepEqual(codes(path, 'post'), ['202', '401', '403', '404', '409', '503'], path);
    }
    assert.deepEqual(codes('/v1/tasks/{id}/logs', 'get'), ['200', '400', '401', '403', '404', '503']);
    // What the descriptions say is what the code does: a replay starts a workflow never started, a 503
    // may be PostgreSQL's, and a cancel answered 503 may have started its task or plan first.
    const said = (path: string, method: string, code: string) =>
      (doc.paths[path]?.[method] as { responses: Record<string, { description?: string }> } | undefined)?.responses[
        code
      ]?.description ?? '';
    for (const path of ['/v1/tasks', '/v1/plans']) {
      assert.doesNotMatch(said(path, 'post', '200'), /nothing started|starts nothing/, path);
      assert.match(said(path, 'post', '200'), /started now if it never was/, path);
      assert.match(
        said(path, 'post', '503'),
        /Temporal.*PostgreSQL is unavailable \(`database unavailable, try again`: without an idempotencyKey, only when the (task|plan) is certainly not stored\)/,
        path,
      );
      assert.match(said(path, 'post', '500'), /Temporal could not say whether its start got through/, path);
      assert.match(said(path, 'post', '422'), /idempotencyKey was first used for another/, path);
      assert.doesNotMatch(said(`${path}/{id}/cancel`, 'post', '503'), /nothing changed/, path);
      assert.match(said(`${path}/{id}/cancel`, 'post', '503'), /PostgreSQL is unavailable/, path);
      assert.match(said(`${path}/{id}/cancel`, 'post', '503'), /never started may have been started/, path);
    }
    // Limits are stated under the names OpenAPI knows (a DTO's `{min, max}` copied as it is would not be).
    type Properties = Record<string, Record<string, unknown> | undefined>;
    const { schemas } = (doc as unknown as { components: { schemas: Record<string, { properties: Properties }> } })
      .components;
    const limits = (properties: Properties | undefined, name: string, keys: string[]) =>
      Object.fromEntries(keys.map((k) => [k, properties?.[name]?.[k]]));
    const plan = schemas.CreatePlanDto?.properties;
    const planTask = schemas.PlanTaskDto?.properties;
    assert.deepEqual(limits(plan, 'maxParallel', ['type', 'minimum', 'maximum']), {
      type: 'integer',
      minimum: 1,
      maximum: 100,
    });
    assert.deepEqual(limits(planTask, 'key', ['pattern', 'minLength', 'maxLength']), {
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$',
      minLength: 1,
      maxLength: 100,
    });
    assert.deepEqual(limits(planTask, 'dependsOn', ['maxItems', 'uniqueItems']), { maxItems: 200, uniqueItems: true });
    for (const properties of [schemas.CreateTaskDto?.properties, planTask]) {
      assert.deepEqual(limits(properties, 'priority', ['type', 'minimum', 'maximum']), {
        type: 'integer',
        minimum: 1,
        maximum: 5,
      });
      assert.deepEqual(limits(properties, 'maxAttempts', ['minimum', 'maximum']), { minimum: 1, maximum: 20 });
      assert.deepEqual(limits(properties, 'timeoutSeconds', ['minimum', 'maximum']), { minimum: 1, maximum: 86_400 });
      // Every length and form the validators check, as the API description states it.
      const strings = ['minLength', 'maxLength', 'pattern'];
      assert.deepEqual(limits(properties, 'agent', strings), { minLength: 1, maxLength: 100, pattern: undefined });
      assert.deepEqual(limits(properties, 'model', strings), { minLength: 1, maxLength: 200, pattern: '^[^-]' });
      assert.deepEqual(limits(properties, 'workdir', strings), { minLength: 1, maxLength: 4096, pattern: '^/' });
      assert.deepEqual(limits(properties, 'labels', ['maxProperties', 'additionalProperties']), {
        maxProperties: 50,
        additionalProperties: { type: 'string', maxLength: 200 },
      });
      assert.deepEqual(limits(properties, 'locks', ['maxItems', 'items']), {
        maxItems: 50,
        items: { type: 'string', minLength: 1, maxLength: 500 },
      });
      assert.deepEqual(limits(properties, 'agents', ['minItems', 'maxItems', 'items']), {
        minItems: 1,
        maxItems: 10,
        items: { type: 'string', minLength: 1, maxLength: 100 },
      });
    }
    for (const properties of [schemas.CreateTaskDto?.properties, plan]) {
      assert.deepEqual(limits(properties, 'idempotencyKey', ['minLength', 'maxLength']), {
        minLength: 1,
        maxLength: 200,
      });
      assert.match(String(properties?.idempotencyKey?.description), /never started .* is started then/);
    }
    assert.deepEqual(limits(planTask, 'dependsOn', ['items']), {
      items: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' },
    });
    const repo = schemas.TaskRepoDto?.properties;
    assert.deepEqual(limits(repo, 'path', ['minLength', 'maxLength', 'pattern']), {
      minLength: 1,
      maxLength: 4096,
      pattern: '^/',
    });
    const ref = limits(repo, 'ref', ['minLength', 'maxLength', 'pattern']);
    assert.deepEqual({ ...ref, pattern: undefined }, { minLength: 1, maxLength: 250, pattern: undefined });
    // The pattern takes what the validators take, and refuses what they refuse.
    const refPattern = new RegExp(String(ref.pattern));
    for (const good of ['main', 'v1.2', 'feature/x', '0a1b2c3']) assert.match(good, refPattern, good);
    for (const bad of ['-x', 'a b', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[b', 'a\\b', '']) {
      assert.doesNotMatch(bad, refPattern, bad);
    }
    // Query parameters: their types as the validators take them, and each header once.
    const parameter = (path: string, name: string) =>
      (
        doc.paths[path]?.get as { parameters: { name: string; in: string; required?: boolean; schema: unknown }[] }
      ).parameters.filter((p) => p.name.toLowerCase() === name.toLowerCase());
    assert.deepEqual(
      parameter('/v1/tasks', 'limit').map((p) => p.schema),
      [{ type: 'integer', minimum: 1, maximum: 200, default: 50 }],
    );
    assert.deepEqual(
      parameter('/v1/tasks', 'label').map((p) => p.schema),
      [{ type: 'array', items: { type: 'string', pattern: '^[^:]+:' } }],
    );
    assert.deepEqual(
      parameter('/v1/tasks/{id}/logs', 'attempt').map((p) => p.schema),
      [{ type: 'string', pattern: '^[1-9]\\d{0,2}$', example: '2' }],
    );
    const lastEventId = parameter('/v1/tasks/{id}/logs', 'last-event-id');
    assert.deepEqual(
      lastEventId.map((p) => [p.name, p.in, p.required]),
      [['Last-Event-ID', 'header', false]],
    );
    // A route that takes a body refuses one of another type (test/e2e/http-errors.e2e.test.ts).
    const withBody = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) => (operation as { requestBody?: unknown }).requestBody !== undefined)
        .map(([method]) => `${method} ${path}`),
    );
    assert.deepEqual(withBody.sort(), [
      'post /v1/plans',
      'post /v1/tasks',
      'put /v1/budget',
      'put /v1/tasks/{id}/budget',
    ]);
    for (const route of withBody) {
      const [method = '', path = ''] = route.split(' ');
      assert.ok(codes(path, method).includes('415'), route);
    }
    // The token check on every /v1 route and none other; the refusal of other sites' pages on every route.
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const method of Object.keys(methods)) {
        const guarded = ['401', '403'].filter((c) => codes(path, method).includes(c));
        assert.deepEqual(guarded, path.startsWith('/v1/') ? ['401', '403'] : ['403'], `${method} ${path}`);
      }
    }
  });
  it('describes what the task routes answer, field for field, in the API description', async () => {
    const doc = await openApiDoc(stack.baseUrl);
    const key = `described-${randomUUID()}`;
    const created = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: '@print described', labels: { suite: key }, idempotencyKey: key },
    });
    assert.equal(created.status, 201, created.text);
    assertDescribes(doc, answerSchema(doc, '/v1/tasks', 'post', '201'), created.json, 'POST /v1/tasks 201');
    const repeated = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: '@print described', labels: { suite: key }, idempotencyKey: key },
    });
    assert.equal(repeated.status, 200, repeated.text);
    assertDescribes(doc, answerSchema(doc, '/v1/tasks', 'post', '200'), repeated.json, 'POST /v1/tasks 200');
    const { id } = created.json as { id: string };
    // Succeeded: its attempts, runs and result are all there.
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
    const task = await call(stack.baseUrl, 'GET', `/v1/tasks/${id}`);
    assertDescribes(doc, answerSchema(doc, '/v1/tasks/{id}', 'get', '200'), task.json, 'GET /v1/tasks/{id}');
    const list = await call(stack.baseUrl, 'GET', `/v1/tasks?label=suite:${key}`);
    assert.equal((list.json as TaskList).items.length, 1, list.text);
    assertDescribes(doc, answerSchema(doc, '/v1/tasks', 'get', '200'), list.json, 'GET /v1/tasks');
    // Cancelled: its error is there too.
    const hanging = await submit(stack.baseUrl, { prompt: '@hang' });
    const cancel = await call(stack.baseUrl, 'POST', `/v1/tasks/${hanging.id}/cancel`);
    assert.equal(cancel.status, 202, cancel.text);
    assertDescribes(doc, answerSchema(doc, '/v1/tasks/{id}/cancel', 'post', '202'), cancel.json, 'cancel');
    const cancelled = await waitForEnd(stack.baseUrl, hanging.id);
    assert.ok(cancelled.error, JSON.stringify(cancelled));
    assertDescribes(doc, answerSchema(doc, '/v1/tasks/{id}', 'get', '200'), cancelled, 'a cancelled task');
  });
});
