import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import Long from 'long';
import { Pool } from 'pg';
import { call, getTask, submit, waitForEnd, type ErrorBody, type TaskView } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { terminalEvents as terminalOf } from '../support/task-rows';
import { openSse, readAll } from '../support/sse';
import { startStack, type Stack } from '../support/stack';
import { findResetPoint } from '../../src/api/runs/reset-point';
import { initRepo } from '../support/git';
import { testEnv } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface NewRun {
  id: string;
  run: number;
  kind: string;
  status: string;
  workflowId: string;
  runId: string;
  fromRun: number;
  resetToEventId?: number;
  links: { self: string; logs: string; temporalUi: string };
}

interface RunView {
  number: number;
  kind: string;
  runId: string | null;
  status: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { class: string; message: string } | null;
  fromRun: number | null;
  resetToEventId: number | null;
  attempts: { number: number; failureClass: string | null; exitCode: number | null }[];
  links: { temporalUi: string };
}

type TaskWithRuns = TaskView & { runs: RunView[] };

const task = async (baseUrl: string, id: string): Promise<TaskWithRuns> => (await getTask(baseUrl, id)) as TaskWithRuns;

describe('retry and reset of finished tasks', { timeout: 120_000 }, () => {
  let stack: Stack;
  let pool: Pool;
  let temporal: Connection;
  let client: Client;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-runs-e2e-'));
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 4 });
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    client = new Client({ connection: temporal, namespace: testEnv.namespace });
    stack = await startStack();
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

  const terminalEvents = (id: string) => terminalOf(pool, id);

  const temporalRuns = (workflowId: string, count: number) =>
    waitFor(`${count} runs of ${workflowId} in Temporal visibility`, async () => {
      const found: { runId: string; status: string }[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
        found.push({ runId: wf.runId, status: wf.status.name });
      }
      return found.length === count && found.every((r) => r.status !== 'RUNNING') ? found : undefined;
    });

  it('retries a failed task as a new run of the same workflow with the same input', async () => {
    const counter = join(tmp, `retry-${randomUUID()}`);
    const submitted = await submit(stack.baseUrl, {
      prompt: `@fail-until 2 ${counter}\n@print done`,
      maxAttempts: 1,
      labels: { suite: 'runs' },
    });
    const first = await waitForEnd(stack.baseUrl, submitted.id);
    assert.equal(first.status, 'failed', JSON.stringify(first));
    assert.equal(first.error?.class, 'nonzero_exit');

    const res = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/retry`);
    assert.equal(res.status, 202, res.text);
    const run = res.json as NewRun;
    assert.equal(run.id, submitted.id);
    assert.equal(run.run, 2);
    assert.equal(run.kind, 'retry');
    assert.equal(run.fromRun, 1);
    assert.equal(run.workflowId, submitted.workflowId, 'same workflow id');
    assert.notEqual(run.runId, submitted.runId, 'a new run');
    assert.ok(run.links.temporalUi.includes(`/workflows/${submitted.workflowId}/${run.runId}/history`));

    const done = (await waitForEnd(stack.baseUrl, submitted.id)) as TaskWithRuns;
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.runId, run.runId);
    assert.equal(done.error, null);
    assert.equal(done.result?.output, 'done\n');
    assert.equal(done.result?.exitCode, 0);
    assert.deepEqual(done.labels, { suite: 'runs' });
    // The task's attempts are those of its current run; each run lists its own.
    assert.deepEqual(
      done.attempts.map((a) => [a.number, a.failureClass]),
      [[1, 'succeeded']],
    );
    assert.deepEqual(
      done.runs.map((r) => [r.number, r.kind, r.status, r.runId, r.fromRun]),
      [
        [1, 'submitted', 'failed', submitted.runId, null],
        [2, 'retry', 'succeeded', run.runId, 1],
      ],
    );
    assert.equal(done.runs[0]?.error?.class, 'nonzero_exit');
    assert.deepEqual(
      done.runs.map((r) => r.attempts.map((a) => [a.number, a.failureClass])),
      [[[1, 'nonzero_exit']], [[1, 'succeeded']]],
    );
    assert.ok(done.runs[0]?.links.temporalUi.includes(`/${submitted.runId}/history`));

    // The agent ran twice in all, and the logs of the current run do not mix in the first run's.
    assert.equal(readFileSync(counter, 'utf8'), '2');
    const logs = await call(stack.baseUrl, 'GET', `/v1/tasks/${submitted.id}/logs`);
    assert.equal(logs.text, 'done\n');

    // Exactly one terminal event per run; the retry is in the audit trail.
    assert.deepEqual(await terminalEvents(submitted.id), [
      { run: 1, kind: 'failed' },
      { run: 2, kind: 'succeeded' },
    ]);
    const requested = (
      await pool.query<{ run: number; detail: Record<string, unknown> }>(
        `SELECT run, detail FROM task_events WHERE task_id = $1 AND kind = 'retry_requested'`,
        [submitted.id],
      )
    ).rows;
    assert.equal(requested.length, 1);
    assert.equal(requested[0]?.run, 2);
    assert.equal(requested[0]?.detail.runId, run.runId);
    assert.equal(requested[0]?.detail.fromRunId, submitted.runId);

    const runs = await temporalRuns(submitted.workflowId, 2);
    assert.deepEqual(runs.map((r) => r.runId).sort(), [submitted.runId, run.runId].sort());
  });

  it('refuses to retry a task that has not finished (409) and an unknown task (404)', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@sleep 30' });
    const running = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/retry`);
    assert.equal(running.status, 409, running.text);
    assert.match((running.json as ErrorBody).message, /only a finished task can be retried/);
    const reset = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/reset`);
    assert.equal(reset.status, 409, reset.text);
    assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/cancel`)).status, 202);
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'cancelled');

    assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${randomUUID()}/retry`)).status, 404);
    assert.equal((await call(stack.baseUrl, 'POST', '/v1/tasks/not-a-uuid/reset')).status, 404);
  });

  it('records a run terminated in Temporal as failed (crash), and retries the task as a new run', async () => {
    const once = join(tmp, `terminated-${randomUUID()}`);
    // Runs long in its first run only, so that the retry's run succeeds.
    const submitted = await submit(stack.baseUrl, { prompt: `@first-run ${once} @sleep 120\n@print done` });
    await waitFor('the task to run', async () => (await task(stack.baseUrl, submitted.id)).status === 'running');
    await client.workflow.getHandle(submitted.workflowId, submitted.runId).terminate('terminated by an operator');

    const res = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/retry`);
    assert.equal(res.status, 202, res.text);
    const run = res.json as NewRun;
    assert.deepEqual([run.run, run.kind, run.fromRun], [2, 'retry', 1]);
    assert.notEqual(run.runId, submitted.runId);

    const done = (await waitForEnd(stack.baseUrl, submitted.id)) as TaskWithRuns;
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.result?.output, 'done\n');
    assert.deepEqual(
      done.runs.map((r) => [r.number, r.kind, r.status, r.error?.class ?? null]),
      [
        [1, 'submitted', 'failed', 'crash'],
        [2, 'retry', 'succeeded', null],
      ],
    );
    assert.match(
      done.runs[0]?.error?.message ?? '',
      new RegExp(`workflow run ${submitted.runId} ended in Temporal \\(terminated\\) without recording an outcome`),
    );
    assert.deepEqual(await terminalEvents(submitted.id), [
      { run: 1, kind: 'failed' },
      { run: 2, kind: 'succeeded' },
    ]);
  });

  it('refuses to cancel a task whose run was terminated in Temporal (409), records it failed, ends followers', async () => {
    const { id, workflowId, runId } = await submit(stack.baseUrl, { prompt: '@print started\n@sleep 120' });
    await waitFor('the task to run', async () => (await task(stack.baseUrl, id)).status === 'running');
    const follower = await openSse(`${stack.baseUrl}/v1/tasks/${id}/logs?follow=1`);
    await client.workflow.getHandle(workflowId, runId).terminate('terminated by an operator');

    const cancel = await call(stack.baseUrl, 'POST', `/v1/tasks/${id}/cancel`);
    assert.equal(cancel.status, 409, cancel.text);
    assert.match((cancel.json as ErrorBody).message, /already failed/);
    const failed = await task(stack.baseUrl, id);
    assert.deepEqual([failed.status, failed.error?.class], ['failed', 'crash']);
    assert.match(failed.error?.message ?? '', /ended in Temporal \(terminated\) without recording an outcome/);
    assert.deepEqual(await terminalEvents(id), [{ run: 1, kind: 'failed' }]);

    // The follower, kept open while the row said running, ends as for any ended task.
    const events = await readAll(follower, 15_000);
    assert.equal(events[events.length - 1]?.event, 'end', JSON.stringify(events));
    assert.deepEqual(JSON.parse(events[events.length - 1]?.data ?? '{}'), { status: 'failed', run: 1 });
  });

  it('starts one new run when retries of the same task race', async () => {
    const { id, workflowId } = await submit(stack.baseUrl, { prompt: '@exit 2', maxAttempts: 1 });
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'failed');
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => call(stack.baseUrl, 'POST', `/v1/tasks/${id}/retry`)),
    );
    assert.deepEqual(answers.map((a) => a.status).sort(), [202, 409, 409, 409], answers.map((a) => a.text).join('\n'));
    const done = (await waitForEnd(stack.baseUrl, id)) as TaskWithRuns;
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.runs.map((r) => [r.number, r.status]),
      [
        [1, 'failed'],
        [2, 'failed'],
      ],
    );
    assert.deepEqual(await terminalEvents(id), [
      { run: 1, kind: 'failed' },
      { run: 2, kind: 'failed' },
    ]);
    await temporalRuns(workflowId, 2);
  });

  it('resets a failed task to before its last failed step: only that step runs again', async () => {
    const counter = join(tmp, `reset-${randomUUID()}`);
    // Fails on the agent's first two runs: both attempts of the first run fail.
    const submitted = await submit(stack.baseUrl, {
      prompt: `@fail-until 3 ${counter}\n@print recovered`,
      maxAttempts: 2,
    });
    const failed = await waitForEnd(stack.baseUrl, submitted.id);
    assert.equal(failed.status, 'failed', JSON.stringify(failed));
    assert.equal(failed.attempts.length, 2);

    const res = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/reset`);
    assert.equal(res.status, 202, res.text);
    const run = res.json as NewRun;
    assert.equal(run.kind, 'reset');
    assert.equal(run.run, 2);
    assert.notEqual(run.runId, submitted.runId);
    assert.ok(typeof run.resetToEventId === 'number' && run.resetToEventId > 0, res.text);

    const done = (await waitForEnd(stack.baseUrl, submitted.id)) as TaskWithRuns;
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.result?.output, 'recovered\n');
    assert.equal(done.result?.exitCode, 0);
    // Attempt 1 and its backoff were kept from the first run; only attempt 2 ran again.
    assert.equal(readFileSync(counter, 'utf8'), '3');
    assert.deepEqual(
      done.runs.map((r) => [r.number, r.kind, r.status, r.resetToEventId]),
      [
        [1, 'submitted', 'failed', null],
        [2, 'reset', 'succeeded', run.resetToEventId],
      ],
    );
    assert.deepEqual(
      done.runs.map((r) => r.attempts.map((a) => [a.number, a.failureClass])),
      [
        [
          [1, 'nonzero_exit'],
          [2, 'nonzero_exit'],
        ],
        [[2, 'succeeded']],
      ],
    );
    assert.deepEqual(await terminalEvents(submitted.id), [
      { run: 1, kind: 'failed' },
      { run: 2, kind: 'succeeded' },
    ]);
    const audit = (
      await pool.query<{ kind: string; run: number }>(
        `SELECT kind, run FROM task_events WHERE task_id = $1 AND kind = 'reset_requested'`,
        [submitted.id],
      )
    ).rows;
    assert.deepEqual(audit, [{ kind: 'reset_requested', run: 2 }]);

    // In Temporal, the new run carries the old history up to the reset point, then goes on.
    const handle = client.workflow.getHandle(submitted.workflowId, run.runId);
    // The agent records the success before the workflow completes: wait for Temporal to catch up.
    await waitFor('the new run to complete', async () => (await handle.describe()).status.name === 'COMPLETED');
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes);
    assert.equal(scheduled.length, 2, 'attempt 1 (kept) and attempt 2 (run again)');
    assert.ok(
      events.some(
        (e) =>
          e.workflowTaskFailedEventAttributes?.cause ===
          proto.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW,
      ),
      'the reset point is marked in the new run',
    );

    // Reset only applies to a failed task.
    const again = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/reset`);
    assert.equal(again.status, 409, again.text);
    assert.match((again.json as ErrorBody).message, /only a failed task can be reset/);
  });

  it('refuses to reset a task that ran with file locks or in a git worktree, and retries it', async () => {
    const repo = join(tmp, `repo-${randomUUID()}`);
    initRepo(repo);
    for (const [fields, held] of [
      [{ locks: ['src/**'], workdir: tmp }, /ran with file locks,/],
      [{ repo: { path: repo } }, /ran with a git worktree,/],
    ] as const) {
      const submitted = await submit(stack.baseUrl, { prompt: '@exit 1', maxAttempts: 1, ...fields });
      assert.equal((await waitForEnd(stack.baseUrl, submitted.id)).status, 'failed');
      const reset = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/reset`);
      assert.equal(reset.status, 409, reset.text);
      const message = (reset.json as ErrorBody).message;
      assert.match(message, held);
      assert.match(message, /retry it instead/);
      const runs = await pool.query('SELECT number FROM task_runs WHERE task_id = $1', [submitted.id]);
      assert.equal(runs.rowCount, 1, 'the refused reset started no run');
      // A retry starts once the failed run's workflow has closed (it gives its locks and worktree back first).
      await waitFor('the retry to start', async () => {
        const retry = await call(stack.baseUrl, 'POST', `/v1/tasks/${submitted.id}/retry`);
        if (retry.status === 409 && /still has a running workflow/.test(retry.text)) return false;
        assert.equal(retry.status, 202, retry.text);
        return true;
      });
      const retried = (await waitForEnd(stack.baseUrl, submitted.id)) as TaskWithRuns;
      assert.deepEqual([retried.status, retried.runs.map((r) => r.kind)], ['failed', ['submitted', 'retry']]);
    }
  });

  it('follows a reset made outside Atelier (the Temporal Web UI, say) as an external run', async () => {
    const counter = join(tmp, `external-${randomUUID()}`);
    const submitted = await submit(stack.baseUrl, { prompt: `@fail-until 2 ${counter}\n@print ok`, maxAttempts: 1 });
    assert.equal((await waitForEnd(stack.baseUrl, submitted.id)).status, 'failed');
    const history = await client.workflow.getHandle(submitted.workflowId, submitted.runId).fetchHistory();
    const point = findResetPoint(history.events ?? []);
    assert.ok(point);
    const { runId } = await client.workflowService.resetWorkflowExecution({
      namespace: testEnv.namespace,
      workflowExecution: { workflowId: submitted.workflowId, runId: submitted.runId },
      reason: 'reset by hand',
      workflowTaskFinishEventId: Long.fromNumber(point.workflowTaskCompletedEventId),
      requestId: randomUUID(),
    });

    const done = await waitFor('the task to follow the new run', async () => {
      const t = await task(stack.baseUrl, submitted.id);
      return t.status === 'succeeded' ? t : undefined;
    });
    assert.equal(done.runId, runId);
    assert.deepEqual(
      done.runs.map((r) => [r.number, r.kind, r.status, r.runId]),
      [
        [1, 'submitted', 'failed', submitted.runId],
        [2, 'external', 'succeeded', runId],
      ],
    );
    assert.deepEqual(await terminalEvents(submitted.id), [
      { run: 1, kind: 'failed' },
      { run: 2, kind: 'succeeded' },
    ]);
  });
});
