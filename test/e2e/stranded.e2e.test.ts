import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { PlanStore } from '../../src/store/plan-store';
import { TaskStore } from '../../src/store/task-store';
import { workflowIdForPlan } from '../../workflows/definitions';
import { call, submit, waitForEnd } from '../support/http-api';
import { ownDatabaseStack } from '../support/own-database-stack';
import { newTask } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

const STRANDED_AFTER_SECONDS = 1;

/**
 * Submissions stored by an API process that stopped before it started their workflows: the rows are
 * written here as the API writes them, and nothing starts them but the API's sweeper. A database of
 * its own, so that this stack's sweeper sees only its own rows.
 */
describe('tasks and plans stored but never started', { timeout: 120_000 }, () => {
  const own = ownDatabaseStack('stranded', { ATELIER_STRANDED_AFTER_SECONDS: String(STRANDED_AFTER_SECONDS) });

  /** The runs Temporal lists of a workflow id, once it lists any (its visibility store may lag). */
  const runsOf = (workflowId: string): Promise<string[]> =>
    waitFor(`Temporal to list ${workflowId}`, async () => {
      const runs: string[] = [];
      for await (const wf of own.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(wf.runId);
      return runs.length > 0 ? runs : undefined;
    });

  it('starts a task stored without its workflow once it is old enough, and runs it once', async () => {
    const stored = (await new TaskStore(own.pool).create(newTask('@print swept'))).task;
    const task = await waitForEnd(own.stack.baseUrl, stored.id);
    assert.equal(task.status, 'succeeded');
    const row = (
      await own.pool.query<{ run_id: string | null; waited: number }>(
        'SELECT run_id, extract(epoch FROM started_at - created_at)::float AS waited FROM tasks WHERE id = $1',
        [stored.id],
      )
    ).rows[0];
    assert.ok(row?.run_id, 'the run id is recorded');
    assert.ok(row.waited >= STRANDED_AFTER_SECONDS, `started ${row.waited} s after it was stored`);
    const runs = (await own.pool.query('SELECT number, run_id FROM task_runs WHERE task_id = $1', [stored.id])).rows;
    assert.deepEqual(runs, [{ number: 1, run_id: row.run_id }]);
    assert.equal(
      (await own.pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [stored.id])).rows[0].n,
      1,
    );
    assert.deepEqual(await runsOf(stored.workflow_id), [row.run_id]);
    const metrics = await call(own.stack.baseUrl, 'GET', '/metrics');
    assert.match(metrics.text, /^atelier_stranded_submissions_started_total\{kind="task"\} [1-9]/m);
  });

  /** Stores a plan as an API that stopped before starting it leaves it: `first`, then `second` after it. */
  const storeStrandedPlan = async (prompt: (key: string) => string): Promise<{ planId: string; taskIds: string[] }> => {
    const planId = randomUUID();
    const tasks = ['first', 'second'].map((key, i) => ({
      ...newTask(prompt(key)),
      key,
      dependsOn: i === 0 ? [] : ['first'],
      labels: { plan: planId },
    }));
    await new PlanStore(own.pool).create({
      id: planId,
      maxParallel: 2,
      onFailure: 'continue',
      workflowId: workflowIdForPlan(planId),
      tasks,
    });
    return { planId, taskIds: tasks.map((t) => t.id) };
  };

  it('starts a plan stored without its workflow, and the plan runs its tasks in order', async () => {
    const { planId } = await storeStrandedPlan((key) => `@print ${key}`);
    const plan = await waitFor(
      'the plan to end',
      async () => {
        const res = await call(own.stack.baseUrl, 'GET', `/v1/plans/${planId}`);
        const body = res.json as {
          status: string;
          tasks: { key: string; status: string; startedAt: string; finishedAt: string }[];
        };
        return body.status === 'running' ? undefined : body;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(plan.status, 'succeeded');
    const [first, second] = plan.tasks;
    assert.deepEqual(
      plan.tasks.map((t) => [t.key, t.status]),
      [
        ['first', 'succeeded'],
        ['second', 'succeeded'],
      ],
    );
    assert.ok(Date.parse(second?.startedAt ?? '') >= Date.parse(first?.finishedAt ?? ''), 'second waits for first');
    const runId = (await own.pool.query('SELECT run_id FROM plans WHERE id = $1', [planId])).rows[0].run_id;
    assert.deepEqual(await runsOf(workflowIdForPlan(planId)), [runId]);
  });

  it('cancels a task stored without its workflow: it is started and cancelled, and no sweep runs it later', async () => {
    const stored = (await new TaskStore(own.pool).create(newTask('@hang'))).task;
    const res = await call(own.stack.baseUrl, 'POST', `/v1/tasks/${stored.id}/cancel`);
    assert.equal(res.status, 202, res.text);
    assert.equal((await waitForEnd(own.stack.baseUrl, stored.id)).status, 'cancelled');
    const runs = await runsOf(stored.workflow_id);
    assert.equal(runs.length, 1, 'one run, started once');
    const terminal = await own.pool.query<{ kind: string }>(
      'SELECT kind FROM task_events WHERE task_id = $1 AND terminal',
      [stored.id],
    );
    assert.deepEqual(
      terminal.rows.map((e) => e.kind),
      ['cancelled'],
    );
  });

  const planWhenEnded = (planId: string) =>
    waitFor(
      'the plan to end',
      async () => {
        const body = (await call(own.stack.baseUrl, 'GET', `/v1/plans/${planId}`)).json as {
          status: string;
          tasks: { key: string; status: string; skippedReason: string | null }[];
        };
        return body.status === 'running' ? undefined : body;
      },
      { timeoutMs: 60_000 },
    );

  it('cancels a plan stored without its workflow: it is started and cancelled, and no sweep runs it later', async () => {
    const { planId, taskIds } = await storeStrandedPlan(() => '@hang');
    const res = await call(own.stack.baseUrl, 'POST', `/v1/plans/${planId}/cancel`);
    assert.equal(res.status, 202, res.text);
    const plan = await planWhenEnded(planId);
    assert.equal(plan.status, 'cancelled');
    // Its first task may have started before the cancel reached the plan: then it was cancelled.
    assert.deepEqual(
      plan.tasks.map((t) => [t.key, t.status === 'skipped' ? 'cancelled' : t.status]),
      [
        ['first', 'cancelled'],
        ['second', 'cancelled'],
      ],
    );
    assert.equal(plan.tasks[1]?.skippedReason, 'plan cancelled');
    assert.equal((await runsOf(workflowIdForPlan(planId))).length, 1, 'one run, started once');
    const attempts = await own.pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [taskIds[1]]);
    assert.equal(attempts.rows[0].n, 0, 'the second task never ran');
  });

  it('cancels a task of a plan stored without its workflow: the plan is started and skips it', async () => {
    const { planId, taskIds } = await storeStrandedPlan(() => '@hang');
    const res = await call(own.stack.baseUrl, 'POST', `/v1/tasks/${taskIds[1]}/cancel`);
    assert.equal(res.status, 202, res.text);
    await waitFor('the second task to be skipped', async () => {
      const body = (await call(own.stack.baseUrl, 'GET', `/v1/plans/${planId}`)).json as {
        tasks: { key: string; status: string; skippedReason: string | null }[];
      };
      return body.tasks[1]?.status === 'skipped' && body.tasks[1].skippedReason === 'cancelled';
    });
    // The rest of the plan runs: its first task is running, and the plan ends once it is cancelled.
    await waitFor('the first task to run', async () => {
      const task = await own.pool.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskIds[0]]);
      return task.rows[0]?.status === 'running';
    });
    assert.equal((await call(own.stack.baseUrl, 'POST', `/v1/plans/${planId}/cancel`)).status, 202);
    assert.equal((await planWhenEnded(planId)).status, 'cancelled');
  });

  it('never runs a task again whose workflow has run already: Temporal refuses a second start', async () => {
    const { id, workflowId, runId } = await submit(own.stack.baseUrl, { prompt: '@print once' });
    assert.equal((await waitForEnd(own.stack.baseUrl, id)).status, 'succeeded');
    // As if the API had started the workflow and stopped before recording its run, and nothing had
    // recorded it since: a row the sweeper takes for stranded.
    await own.pool.query(`UPDATE tasks SET run_id = NULL, status = 'queued' WHERE id = $1`, [id]);
    await own.pool.query('UPDATE task_runs SET run_id = NULL WHERE task_id = $1', [id]);
    const recorded = await waitFor(
      'the sweeper to record the workflow run that exists',
      async () => (await own.pool.query('SELECT run_id FROM tasks WHERE id = $1', [id])).rows[0].run_id ?? undefined,
      { timeoutMs: 30_000 },
    );
    assert.equal(recorded, runId);
    assert.deepEqual(await runsOf(workflowId), [runId]);
    assert.equal(
      (await own.pool.query('SELECT count(*)::int AS n FROM attempts WHERE task_id = $1', [id])).rows[0].n,
      1,
    );
  });
});
