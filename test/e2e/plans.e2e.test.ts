import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { call, getTask, type ErrorBody } from '../support/http-api';
import { answerSchema, assertDescribes, openApiDoc } from '../support/openapi';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { testEnv } from '../support/test-env';
import { waitFor } from '../support/wait-for';

interface PlanTaskView {
  key: string;
  taskId: string;
  dependsOn: string[];
  priority: number;
  status: string;
  skippedReason: string | null;
  error: { class: string; message: string | null } | null;
}

interface PlanView {
  id: string;
  status: string;
  runId: string;
  maxParallel: number;
  onFailure: string;
  workflowId: string;
  tasks: PlanTaskView[];
}

describe('plans over HTTP against the whole service', () => {
  let stack: Stack;
  let temporal: Connection;
  let client: Client;
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-plans-e2e-'));
    stack = await startStack();
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    client = new Client({ connection: temporal, namespace: testEnv.namespace });
  });
  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      await temporal?.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  const getPlan = async (id: string): Promise<PlanView> => {
    const res = await call(stack.baseUrl, 'GET', `/v1/plans/${id}`);
    assert.equal(res.status, 200, res.text);
    return res.json as PlanView;
  };
  const waitForPlanEnd = (id: string) =>
    waitFor(
      `plan ${id} to end`,
      async () => {
        const plan = await getPlan(id);
        return plan.status !== 'running' && plan;
      },
      { timeoutMs: 60_000 },
    );

  /**
   * A plan whose first task, `waits`, the plan started and which waits for its file locks behind a
   * running single task (`holderId`, to cancel): it has written nothing yet. Its second, `then`, depends on it.
   */
  const planWaitingForLocks = async (): Promise<{ holderId: string; plan: PlanView; waits: PlanTaskView }> => {
    const holder = await call(stack.baseUrl, 'POST', '/v1/tasks', {
      body: { prompt: '@hang', workdir: tmp, locks: ['src/**'] },
    });
    assert.equal(holder.status, 201, holder.text);
    const holderId = (holder.json as { id: string }).id;
    await waitFor('the holder to run', async () => (await getTask(stack.baseUrl, holderId)).status === 'running');
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'waits', prompt: 'x', workdir: tmp, locks: ['src/a.ts'] },
          { key: 'then', prompt: 'x', dependsOn: ['waits'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const [waits] = plan.tasks as [PlanTaskView, PlanTaskView];
    await waitFor('the task to wait for its locks', async () => {
      const table = await call(stack.baseUrl, 'GET', `/v1/locks?repo=${encodeURIComponent(tmp)}`);
      return (table.json as { waiters: { taskId: string }[] }).waiters.some((w) => w.taskId === waits.taskId);
    });
    return { holderId, plan, waits };
  };

  it('rejects a cycle with 400 naming it, and unknown keys naming the task', async () => {
    const cycle = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'a', prompt: 'x', dependsOn: ['c'] },
          { key: 'b', prompt: 'x', dependsOn: ['a'] },
          { key: 'c', prompt: 'x', dependsOn: ['b'] },
        ],
      },
    });
    assert.equal(cycle.status, 400);
    const body = cycle.json as ErrorBody;
    assert.match(body.message, /dependency cycle: a -> c -> b -> a/);
    const unknown = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'a', prompt: 'x' },
          { key: 'b', prompt: 'x', dependsOn: ['nope'] },
        ],
      },
    });
    assert.equal(unknown.status, 400);
    assert.deepEqual((unknown.json as ErrorBody).fields, [
      { field: 'tasks.1.dependsOn', problems: ['dependsOn names unknown key "nope"'] },
    ]);
    const badTask = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: { tasks: [{ key: 'a', prompt: 'x', agent: 'no-such-agent' }], onFailure: 'sometimes', extra: 1 },
    });
    assert.equal(badTask.status, 400);
    const fields = (badTask.json as ErrorBody).fields?.map((f) => f.field) ?? [];
    assert.ok(fields.includes('onFailure') && fields.includes('extra'), fields.join(', '));
    const agentProblem = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: { tasks: [{ key: 'a', prompt: 'x', agent: 'no-such-agent' }] },
    });
    assert.equal(agentProblem.status, 400);
    assert.equal((agentProblem.json as ErrorBody).fields?.[0]?.field, 'tasks.0.agent');
  });

  it("refuses a task's own label plan, which each task of a plan gets: 400 naming it", async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'a', prompt: 'x', labels: { team: 'docs' } },
          { key: 'b', prompt: 'x', labels: { plan: 'mine' } },
        ],
      },
    });
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(
      (res.json as ErrorBody).fields?.map((f) => f.field),
      ['tasks.1.labels.plan'],
    );
    assert.match((res.json as ErrorBody).message, /reserved within a plan/);
  });

  it('refuses a plan over the body limit with 413 naming it, though each prompt is within its own', async () => {
    const prompt = 'x'.repeat(200_000);
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: { tasks: Array.from({ length: 6 }, (_, i) => ({ key: `t${i}`, prompt })) },
    });
    assert.equal(res.status, 413, res.text);
    assert.deepEqual(res.json, {
      statusCode: 413,
      error: 'entity.too.large',
      message: 'request entity too large: a body may be at most 1048576 bytes',
    });
  });

  it("names a duplicate key's own field, and a graph problem and a task's own in one 400", async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'a', prompt: 'x' },
          { key: 'a', prompt: 'x', agent: 'no-such-agent' },
        ],
      },
    });
    assert.equal(res.status, 400);
    assert.deepEqual(
      (res.json as ErrorBody).fields?.map((f) => f.field),
      ['tasks.1.key', 'tasks.1.agent'],
    );
  });

  it('stores a plan once per idempotency key: a repeat answers 200 with the same plan and starts nothing', async () => {
    const body = {
      idempotencyKey: `plan-once-${process.pid}-${Date.now()}`,
      tasks: [{ key: 'only', prompt: 'once' }],
    };
    const first = await call(stack.baseUrl, 'POST', '/v1/plans', { body });
    assert.equal(first.status, 201, first.text);
    const again = await call(stack.baseUrl, 'POST', '/v1/plans', { body });
    assert.equal(again.status, 200, again.text);
    const [one, two] = [first.json as PlanView, again.json as PlanView];
    assert.equal(two.id, one.id);
    assert.equal(two.tasks[0]?.taskId, one.tasks[0]?.taskId);
    const done = await waitForPlanEnd(one.id);
    assert.equal(done.status, 'succeeded');
    const tasks = await call(stack.baseUrl, 'GET', `/v1/tasks?label=plan:${one.id}`);
    assert.equal((tasks.json as { items: unknown[] }).items.length, 1, 'one task stored, not two');
  });

  it('stores one plan when the same idempotency key arrives concurrently, and every answer names it', async () => {
    const body = { idempotencyKey: `plan-race-${process.pid}-${Date.now()}`, tasks: [{ key: 'only', prompt: 'race' }] };
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => call(stack.baseUrl, 'POST', '/v1/plans', { body })),
    );
    assert.deepEqual(answers.map((r) => r.status).sort(), [200, 200, 200, 201], answers.map((r) => r.text).join('\n'));
    const plans = answers.map((r) => r.json as PlanView);
    assert.equal(new Set(plans.map((p) => p.id)).size, 1, 'one plan');
    assert.equal(new Set(plans.map((p) => p.runId)).size, 1, 'one run of its workflow');
    assert.equal(new Set(plans.map((p) => p.tasks[0]?.taskId)).size, 1);
    const id = (plans[0] as PlanView).id;
    assert.equal((await waitForPlanEnd(id)).status, 'succeeded');
    const tasks = await call(stack.baseUrl, 'GET', `/v1/tasks?label=plan:${id}`);
    assert.equal((tasks.json as { items: unknown[] }).items.length, 1, 'one task stored');
  });

  it('shows a skipped task retried on its own by its own status', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        maxParallel: 1,
        tasks: [
          { key: 'fails', prompt: '@exit 2', maxAttempts: 1, priority: 1 },
          { key: 'later', prompt: 'later done', priority: 2 },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = await waitForPlanEnd((res.json as PlanView).id);
    assert.equal(plan.status, 'failed');
    const later = plan.tasks.find((t) => t.key === 'later') as PlanTaskView;
    assert.equal(later.status, 'skipped');
    const retried = await call(stack.baseUrl, 'POST', `/v1/tasks/${later.taskId}/retry`);
    assert.equal(retried.status, 202, retried.text);
    const shown = await waitFor('the retried task to show as succeeded in its plan', async () => {
      const t = (await getPlan(plan.id)).tasks.find((x) => x.key === 'later');
      return t?.status === 'succeeded' && t;
    });
    assert.equal(shown.skippedReason, later.skippedReason, 'the reason it was skipped is kept');
  });

  it('cancels a plan task not started yet: it never starts, and counts as failed for the plan', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        onFailure: 'continue',
        tasks: [
          { key: 'first', prompt: '@sleep 2\nfirst' },
          { key: 'waits', prompt: 'never', dependsOn: ['first'] },
          { key: 'after', prompt: 'never', dependsOn: ['waits'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const waits = plan.tasks[1] as PlanTaskView;
    const cancel = await call(stack.baseUrl, 'POST', `/v1/tasks/${waits.taskId}/cancel`);
    assert.equal(cancel.status, 202, cancel.text);
    const done = await waitForPlanEnd(plan.id);
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['first', 'succeeded', null],
        ['waits', 'skipped', 'cancelled'],
        ['after', 'skipped', 'dependency "waits" failed'],
      ],
    );
    const task = await getTask(stack.baseUrl, waits.taskId);
    assert.equal(task.status, 'cancelled');
    assert.deepEqual(task.attempts, [], 'its agent never ran');
    // On its own it would run without the work its plan waited for.
    const after = done.tasks[2] as PlanTaskView;
    const retry = await call(stack.baseUrl, 'POST', `/v1/tasks/${after.taskId}/retry`);
    assert.equal(retry.status, 409, retry.text);
    assert.match(
      (retry.json as ErrorBody).message,
      /was skipped by its plan \(dependency "waits" failed\) and never ran: submit it again/,
    );
  });

  it('runs a plan to success; every task is an ordinary task too', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        maxParallel: 2,
        tasks: [
          { key: 'schema', prompt: 'schema done' },
          { key: 'api', prompt: 'api done', dependsOn: ['schema'], priority: 1 },
          { key: 'ui', prompt: 'ui done', dependsOn: ['schema'] },
          { key: 'docs', prompt: 'docs done', dependsOn: ['api', 'ui'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const created = res.json as PlanView;
    assert.equal(created.workflowId, `plan-${created.id}`);
    assert.equal(created.onFailure, 'stop');
    assert.deepEqual(
      created.tasks.map((t) => [t.key, t.dependsOn]),
      [
        ['schema', []],
        ['api', ['schema']],
        ['ui', ['schema']],
        ['docs', ['api', 'ui']],
      ],
    );
    const done = await waitForPlanEnd(created.id);
    assert.equal(done.status, 'succeeded');
    for (const t of done.tasks) {
      assert.equal(t.status, 'succeeded', t.key);
      const task = await getTask(stack.baseUrl, t.taskId);
      assert.equal(task.status, 'succeeded');
      assert.equal(task.workflowId, `task-${t.taskId}`);
    }
  });

  it('records a plan whose workflow was terminated in Temporal as failed, when asked to cancel it', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        tasks: [
          { key: 'hang', prompt: '@hang' },
          { key: 'then', prompt: 'x', dependsOn: ['hang'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const [hang, then] = plan.tasks as [PlanTaskView, PlanTaskView];
    await waitFor(
      'the first task to run',
      async () => (await getTask(stack.baseUrl, hang.taskId)).status === 'running',
    );
    // Temporal terminates its running child a moment after it.
    await client.workflow.getHandle(plan.workflowId).terminate('terminated by an operator');
    await waitFor(
      'Temporal to terminate the running task',
      async () => (await client.workflow.getHandle(`task-${hang.taskId}`).describe()).status.name === 'TERMINATED',
    );

    const cancel = await call(stack.baseUrl, 'POST', `/v1/tasks/${then.taskId}/cancel`);
    assert.equal(cancel.status, 202, cancel.text);
    assert.deepEqual(cancel.json, { id: then.taskId, status: 'cancelled' });
    const done = await getPlan(plan.id);
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['hang', 'failed', null],
        ['then', 'skipped', `plan workflow run ${plan.runId} ended in Temporal (terminated)`],
      ],
    );
    const failed = await getTask(stack.baseUrl, hang.taskId);
    assert.equal(failed.error?.class, 'crash');
    assert.match(failed.error?.message ?? '', /ended in Temporal \(terminated\) without recording an outcome/);
    const again = await call(stack.baseUrl, 'POST', `/v1/plans/${plan.id}/cancel`);
    assert.equal(again.status, 409, again.text);
    assert.match((again.json as ErrorBody).message, /already failed/);
  });

  it('records a task terminated before its first attempt (waiting for its locks) as failed, and goes on as after a failure', async () => {
    const { holderId, plan, waits } = await planWaitingForLocks();
    await client.workflow.getHandle(`task-${waits.taskId}`).terminate('terminated by an operator');

    const done = await waitForPlanEnd(plan.id);
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['waits', 'failed', null],
        ['then', 'skipped', 'plan stopped: task "waits" failed'],
      ],
    );
    const failed = await getTask(stack.baseUrl, waits.taskId);
    assert.equal(failed.error?.class, 'crash');
    assert.match(failed.error?.message ?? '', /ended in Temporal \(terminated\) without recording an outcome/);
    assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${holderId}/cancel`)).status, 202);
  });

  it('records a task its terminated plan started, still waiting for its locks, as failed, not skipped', async () => {
    const { holderId, plan, waits } = await planWaitingForLocks();
    await client.workflow.getHandle(plan.workflowId).terminate('terminated by an operator');
    await waitFor(
      'Temporal to terminate the waiting task',
      async () => (await client.workflow.getHandle(`task-${waits.taskId}`).describe()).status.name === 'TERMINATED',
    );

    const cancel = await call(stack.baseUrl, 'POST', `/v1/plans/${plan.id}/cancel`);
    assert.equal(cancel.status, 409, cancel.text);
    assert.match((cancel.json as ErrorBody).message, /already failed/);
    const done = await getPlan(plan.id);
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['waits', 'failed', null],
        ['then', 'skipped', `plan workflow run ${plan.runId} ended in Temporal (terminated)`],
      ],
    );
    const failed = await getTask(stack.baseUrl, waits.taskId);
    assert.equal(failed.error?.class, 'crash');
    assert.match(failed.error?.message ?? '', /ended in Temporal \(terminated\) without recording an outcome/);
    assert.equal((await call(stack.baseUrl, 'POST', `/v1/tasks/${holderId}/cancel`)).status, 202);
  });

  it('records a terminated plan without waiting for a task retried on its own, whose run goes on', async () => {
    const once = join(tmp, 'retried-once');
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        onFailure: 'continue',
        tasks: [
          { key: 'retried', prompt: `@first-run ${once} @exit 2\n@hang`, maxAttempts: 1 },
          { key: 'hang', prompt: '@hang' },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const [retried, hang] = plan.tasks as [PlanTaskView, PlanTaskView];
    await waitFor(
      'the first task to fail and the second to run',
      async () =>
        (await getTask(stack.baseUrl, retried.taskId)).status === 'failed' &&
        (await getTask(stack.baseUrl, hang.taskId)).status === 'running',
    );
    const retry = await call(stack.baseUrl, 'POST', `/v1/tasks/${retried.taskId}/retry`);
    assert.equal(retry.status, 202, retry.text);
    await waitFor(
      'the retried run to run',
      async () => (await getTask(stack.baseUrl, retried.taskId)).status === 'running',
    );
    await client.workflow.getHandle(plan.workflowId).terminate('terminated by an operator');
    await waitFor(
      "Temporal to terminate the plan's running task",
      async () => (await client.workflow.getHandle(`task-${hang.taskId}`).describe()).status.name === 'TERMINATED',
    );

    const cancel = await call(stack.baseUrl, 'POST', `/v1/plans/${plan.id}/cancel`);
    assert.equal(cancel.status, 409, cancel.text);
    assert.match((cancel.json as ErrorBody).message, /already failed/);
    const done = await getPlan(plan.id);
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status]),
      [
        ['retried', 'running'],
        ['hang', 'failed'],
      ],
    );
    const own = await call(stack.baseUrl, 'POST', `/v1/tasks/${retried.taskId}/cancel`);
    assert.equal(own.status, 202, own.text);
    await waitFor(
      'the retried run to end by its own cancel',
      async () => (await getTask(stack.baseUrl, retried.taskId)).status === 'cancelled',
    );
  });

  it('cancels a plan: the running task is cancelled, the rest skipped; a second cancel is a no-op', async () => {
    const res = await call(stack.baseUrl, 'POST', '/v1/plans', {
      body: {
        onFailure: 'continue',
        tasks: [
          { key: 'hang', prompt: '@hang' },
          { key: 'then', prompt: 'x', dependsOn: ['hang'] },
        ],
      },
    });
    assert.equal(res.status, 201, res.text);
    const plan = res.json as PlanView;
    const hang = plan.tasks[0] as PlanTaskView;
    await waitFor(
      'the first task to run',
      async () => (await getTask(stack.baseUrl, hang.taskId)).status === 'running',
    );
    const cancel = await call(stack.baseUrl, 'POST', `/v1/plans/${plan.id}/cancel`);
    assert.equal(cancel.status, 202);
    const done = await waitForPlanEnd(plan.id);
    assert.equal(done.status, 'cancelled');
    assert.deepEqual(
      done.tasks.map((t) => [t.key, t.status, t.skippedReason]),
      [
        ['hang', 'cancelled', null],
        ['then', 'skipped', 'plan cancelled'],
      ],
    );
    assert.equal((await getTask(stack.baseUrl, (done.tasks[1] as PlanTaskView).taskId)).status, 'cancelled');
    const again = await call(stack.baseUrl, 'POST', `/v1/plans/${plan.id}/cancel`);
    assert.deepEqual(again.json, { id: plan.id, status: 'cancelled' });
    assert.equal((await call(stack.baseUrl, 'GET', '/v1/plans/not-a-plan')).status, 404);
  });
  it('describes what the plan routes answer, field for field, in the API description', async () => {
    const doc = await openApiDoc(stack.baseUrl);
    const body = { idempotencyKey: `described-${randomUUID()}`, tasks: [{ key: 'hang', prompt: '@hang' }] };
    const created = await call(stack.baseUrl, 'POST', '/v1/plans', { body });
    assert.equal(created.status, 201, created.text);
    assertDescribes(doc, answerSchema(doc, '/v1/plans', 'post', '201'), created.json, 'POST /v1/plans 201');
    const repeated = await call(stack.baseUrl, 'POST', '/v1/plans', { body });
    assert.equal(repeated.status, 200, repeated.text);
    assertDescribes(doc, answerSchema(doc, '/v1/plans', 'post', '200'), repeated.json, 'POST /v1/plans 200');
    const { id } = created.json as PlanView;
    const cancel = await call(stack.baseUrl, 'POST', `/v1/plans/${id}/cancel`);
    assert.equal(cancel.status, 202, cancel.text);
    assertDescribes(doc, answerSchema(doc, '/v1/plans/{id}/cancel', 'post', '202'), cancel.json, 'cancel');
    // Ended: its task's times and error are there too.
    const ended = await waitForPlanEnd(id);
    assert.ok(ended.tasks[0]?.error, JSON.stringify(ended));
    assertDescribes(doc, answerSchema(doc, '/v1/plans/{id}', 'get', '200'), ended, 'GET /v1/plans/{id}');
  });
});
