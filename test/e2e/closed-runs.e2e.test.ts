import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, getTask, submit, waitForEnd, type TaskView } from '../support/http-api';
import { ownDatabaseStack } from '../support/own-database-stack';
import { openSse, readAll } from '../support/sse';
import { terminalEvents as terminalOf } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

/** How often this stack's API asks Temporal for runs closed without recording their end. */
const SWEEP_SECONDS = 1;

type TaskWithRuns = TaskView & { runs: { attempts: { failureClass: string | null }[] }[] };

interface PlanView {
  id: string;
  status: string;
  runId: string;
  workflowId: string;
  tasks: { key: string; taskId: string; status: string; skippedReason: string | null }[];
}

/**
 * Runs that closed in Temporal without recording their end (an operator terminated them), recorded by
 * the API's sweep with no cancel or retry asking. A database of its own: the sweep looks at every
 * workflow Temporal closed so, and must find only this file's rows (other tests' terminated runs are
 * theirs to record, by their own cancels and retries).
 */
describe('runs closed in Temporal without recording their end', { timeout: 120_000 }, () => {
  const own = ownDatabaseStack('closed_runs', { ATELIER_CLOSED_RUN_SWEEP_SECONDS: String(SWEEP_SECONDS) });

  const metric = async (name: string): Promise<number> => {
    const text = (await call(own.stack.baseUrl, 'GET', '/metrics')).text;
    const escaped = name.replace(/[{}]/g, '\\$&');
    return Number(new RegExp(`^${escaped} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };
  const terminalEvents = (id: string) => terminalOf(own.pool, id);
  const running = (id: string) =>
    waitFor(`task ${id} to run`, async () => (await getTask(own.stack.baseUrl, id)).status === 'running');

  it('records a terminated task failed (crash), ends its followers, and leaves running tasks alone', async () => {
    const recordedBefore = await metric('atelier_closed_runs_recorded_total{kind="task"}');
    const terminated = await submit(own.stack.baseUrl, { prompt: '@print started\n@sleep 120' });
    const alive = await submit(own.stack.baseUrl, { prompt: '@sleep 120' });
    await running(terminated.id);
    await running(alive.id);
    const follower = await openSse(`${own.stack.baseUrl}/v1/tasks/${terminated.id}/logs?follow=1`);
    await own.client.workflow.getHandle(terminated.workflowId, terminated.runId).terminate('terminated by an operator');

    // Nobody cancels or retries it: the sweep finds it closed in Temporal.
    const failed = (await waitForEnd(own.stack.baseUrl, terminated.id)) as TaskWithRuns;
    assert.deepEqual([failed.status, failed.error?.class], ['failed', 'crash'], JSON.stringify(failed));
    assert.match(
      failed.error?.message ?? '',
      new RegExp(`workflow run ${terminated.runId} ended in Temporal \\(terminated\\) without recording an outcome`),
    );
    assert.deepEqual(await terminalEvents(terminated.id), [{ run: 1, kind: 'failed' }]);
    // Its attempt, left open by the terminated run, is closed too.
    assert.deepEqual(
      failed.runs[0]?.attempts.map((a) => a.failureClass),
      ['crash'],
    );
    const events = await readAll(follower, 15_000);
    assert.deepEqual(JSON.parse(events[events.length - 1]?.data ?? '{}'), { status: 'failed', run: 1 });
    assert.equal(await metric('atelier_closed_runs_recorded_total{kind="task"}'), recordedBefore + 1);

    // Two sweeps later, the task still running in Temporal still runs.
    const sweeps = await metric('atelier_closed_run_sweeps_total');
    await waitFor('two more sweeps', async () => (await metric('atelier_closed_run_sweeps_total')) >= sweeps + 2);
    assert.equal((await getTask(own.stack.baseUrl, alive.id)).status, 'running');
    assert.equal((await call(own.stack.baseUrl, 'POST', `/v1/tasks/${alive.id}/cancel`)).status, 202);
    assert.equal((await waitForEnd(own.stack.baseUrl, alive.id)).status, 'cancelled');
  });

  it('records a terminated plan failed: its running task failed, the rest skipped', async () => {
    const recordedBefore = await metric('atelier_closed_runs_recorded_total{kind="plan"}');
    const res = await call(own.stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'hang', prompt: '@hang' },
          { key: 'then', prompt: 'x', dependsOn: ['hang'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const [hang, then] = plan.tasks as [PlanView['tasks'][number], PlanView['tasks'][number]];
    await running(hang.taskId);
    await own.client.workflow.getHandle(plan.workflowId).terminate('terminated by an operator');

    // Nobody cancels it: the sweep finds the plan and its task closed in Temporal.
    const done = await waitFor('the plan to be recorded', async () => {
      const p = (await call(own.stack.baseUrl, 'GET', `/v1/plans/${plan.id}`)).json as PlanView;
      return p.status !== 'running' && p;
    });
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['hang', 'failed', null],
        ['then', 'skipped', `plan workflow run ${plan.runId} ended in Temporal (terminated)`],
      ],
    );
    const failed = await getTask(own.stack.baseUrl, hang.taskId);
    assert.equal(failed.error?.class, 'crash');
    assert.match(failed.error?.message ?? '', /ended in Temporal \(terminated\) without recording an outcome/);
    assert.equal((await getTask(own.stack.baseUrl, then.taskId)).status, 'cancelled');
    assert.equal(await metric('atelier_closed_runs_recorded_total{kind="plan"}'), recordedBefore + 1);
  });
});
