import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BadRequestException, InternalServerErrorException, UnprocessableEntityException } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Pool } from 'pg';
import type { FieldProblem } from '../../src/api/http/validation';
import { LockTableFullException, LockTableRoom } from '../../src/api/locks/lock-table-room';
import { PlansService } from '../../src/api/plans/plans.service';
import { TasksService } from '../../src/api/tasks/tasks.service';
import { loadAgentsFile } from '../../src/config/agents-file';
import { loadConfig } from '../../src/config/env';
import { AttemptStore } from '../../src/store/attempt-store';
import { PlanStore } from '../../src/store/plan-store';
import { RunStore } from '../../src/store/run-store';
import { TaskStore } from '../../src/store/task-store';
import { TEST_AGENTS_FILE, testEnv } from '../support/test-env';

/** A Temporal client whose starts succeed (new runs), or all fail without reaching it (it has no such workflow). */
function fakeTemporal(startFails = false): { client: Client; starts: () => number } {
  let starts = 0;
  const client = {
    workflow: {
      start: async () => {
        starts += 1;
        if (startFails) throw new Error('connection refused');
        return { firstExecutionRunId: randomUUID() };
      },
      getHandle: (workflowId: string) => ({
        describe: () => Promise.reject(new WorkflowNotFoundError('not found', workflowId, undefined)),
      }),
    },
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
  } as unknown as Client;
  return { client, starts: () => starts };
}

const broken = (): Promise<never> => Promise.reject(new Error('the write failed'));

/**
 * What a submission without an idempotency key answers when the database fails around its workflow's
 * start. A 503 tells the client to send it again: it must not come once the work runs, or will.
 */
describe('a submission whose database fails around its start', () => {
  let pool: Pool;
  const config = loadConfig({
    DATABASE_URL: testEnv.databaseUrl,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
  });
  const agents = loadAgentsFile(TEST_AGENTS_FILE);
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  function services(
    client: Client,
    {
      tasks = new TaskStore(pool),
      plans = new PlanStore(pool),
      agentsFile = agents,
      // Nothing here declares locks: the room is never asked, unless a test says otherwise.
      lockRoom = new LockTableRoom(client, config),
    } = {},
  ) {
    const attempts = new AttemptStore(pool);
    const planService = new PlansService(config, agentsFile, client, plans, tasks, attempts, lockRoom);
    const taskService = new TasksService(
      config,
      agentsFile,
      client,
      pool,
      tasks,
      new RunStore(pool),
      plans,
      attempts,
      planService,
      lockRoom,
    );
    return { taskService, planService };
  }

  it('answers a started task as started when its run id cannot be written; its row stays for the run', async () => {
    const temporal = fakeTemporal();
    const tasks = new TaskStore(pool);
    tasks.setRunId = broken;
    const { body, created } = await services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' });
    assert.equal(created, true);
    assert.equal(temporal.starts(), 1);
    assert.ok(body.runId, 'the answer carries the run id');
    const row = await new TaskStore(pool).get(body.id);
    assert.equal(row?.status, 'queued');
    assert.equal(row?.run_id, null, "the run's first write records it (RunStore.registerRun)");
    await new TaskStore(pool).deleteUnstarted(body.id); // no workflow runs it: no sweeper may start it
  });

  it('answers a started plan as started when its run id cannot be written', async () => {
    const temporal = fakeTemporal();
    const plans = new PlanStore(pool);
    plans.setRunId = broken;
    const { body, created } = await services(temporal.client, { plans }).planService.create({
      tasks: [{ key: 'a', prompt: '@print hi' }],
    });
    assert.equal(created, true);
    assert.equal(temporal.starts(), 1);
    assert.ok(body.runId, 'the answer carries the run id');
    assert.equal(body.tasks.length, 1);
    await new PlanStore(pool).deleteUnstarted(body.id);
  });

  it('never starts again a plan that ended with its run unrecorded, when its key comes again', async () => {
    const temporal = fakeTemporal();
    const plans = new PlanStore(pool);
    plans.setRunId = broken;
    const dto = { idempotencyKey: `ended-${randomUUID()}`, tasks: [{ key: 'a', prompt: '@print hi' }] };
    const { planService } = services(temporal.client, { plans });
    const first = await planService.create(dto);
    assert.equal(temporal.starts(), 1);
    // It ran and ended; its workflow may since have gone past Temporal's retention, which would take a
    // second start.
    await pool.query(`UPDATE plans SET status = 'failed', finished_at = now() WHERE id = $1`, [first.body.id]);
    const again = await planService.create(dto);
    assert.equal(again.created, false);
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.body.runId, null);
    assert.equal(temporal.starts(), 1, 'started again');
    await new PlanStore(pool).deleteUnstarted(first.body.id);
  });

  it('answers a 500 naming the stored task, not a 503, when a failed start cannot remove its row', async () => {
    const temporal = fakeTemporal(true);
    const tasks = new TaskStore(pool);
    tasks.deleteUnstarted = broken;
    let id: string | undefined;
    await assert.rejects(services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' }), (err) => {
      assert.ok(err instanceof InternalServerErrorException, String(err));
      assert.match(
        err.message,
        /^task [0-9a-f-]{36} is stored and its workflow could not be started now; the API will start it: do not submit it again \(GET \/v1\/tasks\/[0-9a-f-]{36} shows it\)$/,
      );
      id = /^task (\S+)/.exec(err.message)?.[1];
      assert.ok(err.message.endsWith(`/v1/tasks/${id} shows it)`));
      return true;
    });
    // The row stays, for the stranded-submission sweeper to start.
    assert.equal((await new TaskStore(pool).get(id as string))?.status, 'queued');
    await new TaskStore(pool).deleteUnstarted(id as string);
  });

  it('answers a replayed key with the task stored first, though its agent and workdir are gone since', async () => {
    const temporal = fakeTemporal();
    const workdir = mkdtempSync(join(tmpdir(), 'atelier-replay-'));
    const key = `replay-${randomUUID()}`;
    const dto = { prompt: '@print hi', agent: 'stand-in', workdir, idempotencyKey: key };
    const first = await services(temporal.client).taskService.create(dto);
    rmSync(workdir, { recursive: true });
    const redeployed = {
      ...agents,
      agents: Object.fromEntries(Object.entries(agents.agents).filter(([name]) => name !== 'stand-in')),
    };
    const { taskService } = services(temporal.client, { agentsFile: redeployed });
    const again = await taskService.create(dto);
    assert.equal(again.created, false);
    assert.equal(again.body.id, first.body.id);
    assert.equal(temporal.starts(), 1, 'started once');
    // A new submission is checked, every problem named at once.
    await assert.rejects(taskService.create({ ...dto, idempotencyKey: undefined }), (err) => {
      assert.ok(err instanceof BadRequestException, String(err));
      const fields = (err.getResponse() as { fields: FieldProblem[] }).fields.map((f) => f.field);
      assert.deepEqual(fields, ['agent', 'workdir']);
      return true;
    });
    await pool.query('DELETE FROM tasks WHERE id = $1', [first.body.id]); // its workflow never ran
  });

  it('answers a submission refused for a full lock table as a repeat when its key was stored meanwhile', async () => {
    const temporal = fakeTemporal();
    const key = `full-${randomUUID()}`;
    const dto = { prompt: '@print hi', idempotencyKey: key };
    const lockRoom = new LockTableRoom(temporal.client, config);
    // The same key's first request stores its task while this one looks at the lock table, and fills it.
    let stored: string | undefined;
    lockRoom.ensureRoom = async () => {
      stored ??= (await services(temporal.client).taskService.create(dto)).body.id;
      throw new LockTableFullException('/repo', 3);
    };
    const again = await services(temporal.client, { lockRoom }).taskService.create(dto);
    assert.equal(again.created, false, 'a 200, not a 429 saying nothing was stored');
    assert.equal(again.body.id, stored);
    assert.equal(temporal.starts(), 1, 'started once');
    // Without a key stored, the refusal stands.
    await assert.rejects(
      services(temporal.client, { lockRoom }).taskService.create({ ...dto, idempotencyKey: `other-${randomUUID()}` }),
      LockTableFullException,
    );

    const planDto = { idempotencyKey: key, tasks: [{ key: 'a', prompt: '@print hi' }] };
    let storedPlan: string | undefined;
    lockRoom.ensureRoom = async () => {
      storedPlan ??= (await services(temporal.client).planService.create(planDto)).body.id;
      throw new LockTableFullException('/repo', 3);
    };
    const planAgain = await services(temporal.client, { lockRoom }).planService.create(planDto);
    assert.equal(planAgain.created, false);
    assert.equal(planAgain.body.id, storedPlan);
    // Their workflows never ran.
    await pool.query('DELETE FROM tasks WHERE id = $1', [stored]);
    await pool.query('UPDATE plans SET run_id = NULL WHERE id = $1', [storedPlan]);
    await new PlanStore(pool).deleteUnstarted(storedPlan as string);
  });
  it('refuses a key sent again with another request, naming idempotencyKey, and replays the same request', async () => {
    const temporal = fakeTemporal();
    const key = `other-${randomUUID()}`;
    const { taskService } = services(temporal.client);
    const first = await taskService.create({ prompt: '@print hi', labels: { a: '1', b: '2' }, idempotencyKey: key });
    // The same request, its fields in another order: a replay.
    const again = await taskService.create({ idempotencyKey: key, labels: { b: '2', a: '1' }, prompt: '@print hi' });
    assert.equal(again.created, false);
    assert.equal(again.body.id, first.body.id);
    const refusedAsOther = (err: unknown): boolean => {
      assert.ok(err instanceof UnprocessableEntityException, String(err));
      const body = err.getResponse() as { fields: FieldProblem[]; message: string };
      assert.deepEqual(
        body.fields.map((f) => f.field),
        ['idempotencyKey'],
      );
      assert.match(
        body.message,
        new RegExp(`^idempotencyKey: was first used for another request \\(task ${first.body.id}\\)`),
      );
      return true;
    };
    await assert.rejects(taskService.create({ prompt: '@print bye', idempotencyKey: key }), refusedAsOther);
    await assert.rejects(
      taskService.create({ prompt: '@print hi', labels: { a: '1' }, idempotencyKey: key }),
      refusedAsOther,
    );
    // Two requests at once: the second's insert finds the key taken, and is refused all the same.
    const racing = new TaskStore(pool);
    const byKey = racing.byIdempotencyKey.bind(racing);
    let asked = 0;
    racing.byIdempotencyKey = async (k) => (++asked === 1 ? undefined : byKey(k)); // not stored yet, at first
    await assert.rejects(
      services(temporal.client, { tasks: racing }).taskService.create({ prompt: '@print bye', idempotencyKey: key }),
      refusedAsOther,
    );
    assert.equal((await new TaskStore(pool).get(first.body.id))?.prompt, '@print hi', 'the first task is untouched');
    assert.equal(temporal.starts(), 1, 'started once');
    await pool.query('DELETE FROM tasks WHERE id = $1', [first.body.id]); // its workflow never ran
  });

  it('refuses a plan key sent again with another plan', async () => {
    const temporal = fakeTemporal();
    const dto = { idempotencyKey: `other-plan-${randomUUID()}`, tasks: [{ key: 'a', prompt: '@print hi' }] };
    const { planService } = services(temporal.client);
    const first = await planService.create(dto);
    assert.equal((await planService.create(dto)).body.id, first.body.id);
    await assert.rejects(
      planService.create({
        ...dto,
        tasks: [
          { key: 'a', prompt: '@print hi', dependsOn: [] },
          { key: 'b', prompt: '@print b' },
        ],
      }),
      (err) => {
        assert.ok(err instanceof UnprocessableEntityException, String(err));
        assert.match(err.message, new RegExp(`\\(plan ${first.body.id}\\)`));
        return true;
      },
    );
    assert.equal(temporal.starts(), 1, 'started once');
    await pool.query('UPDATE plans SET run_id = NULL WHERE id = $1', [first.body.id]);
    await new PlanStore(pool).deleteUnstarted(first.body.id);
  });

  it('answers a task whose insert committed, its answer lost, as created, and starts it once', async () => {
    const temporal = fakeTemporal();
    const tasks = new TaskStore(pool);
    const create = tasks.create.bind(tasks);
    tasks.create = async (t) => {
      await create(t);
      throw new Error('Connection terminated unexpectedly');
    };
    const { body, created } = await services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' });
    assert.equal(created, true, 'a 201, not a 503 that would have the client send it again');
    assert.equal(temporal.starts(), 1);
    assert.equal((await new TaskStore(pool).get(body.id))?.run_id, body.runId);
    await pool.query('DELETE FROM tasks WHERE id = $1', [body.id]); // its workflow never ran
  });

  it('answers a plan whose commit was lost as created, and starts it once', async () => {
    const temporal = fakeTemporal();
    const plans = new PlanStore(pool);
    const create = plans.create.bind(plans);
    plans.create = async (p) => {
      await create(p);
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    };
    const { body, created } = await services(temporal.client, { plans }).planService.create({
      tasks: [{ key: 'a', prompt: '@print hi' }],
    });
    assert.equal(created, true);
    assert.equal(temporal.starts(), 1);
    assert.equal(body.tasks.length, 1);
    await pool.query('UPDATE plans SET run_id = NULL WHERE id = $1', [body.id]);
    await new PlanStore(pool).deleteUnstarted(body.id);
  });

  it('keeps the 503 for a write that never committed, and answers a 500 naming the task when it cannot tell', async () => {
    const temporal = fakeTemporal();
    const lost = new Error('Connection terminated unexpectedly');
    const tasks = new TaskStore(pool);
    tasks.create = () => Promise.reject(lost);
    await assert.rejects(services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' }), (err) => {
      assert.equal(err, lost, 'the database error, which the API answers 503: sending it again is safe');
      return true;
    });
    // Refused before anything was sent: not looked for.
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    tasks.create = () => Promise.reject(refused);
    let looked = false;
    tasks.get = async () => {
      looked = true;
      return undefined;
    };
    await assert.rejects(services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' }), (err) => {
      assert.equal(err, refused);
      return true;
    });
    assert.equal(looked, false);
    // The look fails too: it may be stored.
    tasks.create = () => Promise.reject(lost);
    tasks.get = broken;
    await assert.rejects(services(temporal.client, { tasks }).taskService.create({ prompt: '@print hi' }), (err) => {
      assert.ok(err instanceof InternalServerErrorException, String(err));
      assert.match(
        err.message,
        /^task [0-9a-f-]{36} may be stored \(the database's answer was lost\): do not submit it again before GET \/v1\/tasks\/[0-9a-f-]{36} answers 404$/,
      );
      return true;
    });
    assert.equal(temporal.starts(), 0);
  });
});
