import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Pool } from 'pg';
import {
  createAgentActivities,
  createBookkeepingActivities,
  createLockActivities,
  createPlanActivities,
  createWorktreeActivities,
  taskWorkSaver,
  type AgentActivities,
  type AgentActivityDeps,
  type LockActivities,
  type WorktreeActivities,
} from '../../activities';
import { loadAgentsFile, type AgentsFile } from '../../src/config/agents-file';
import { AdmissionStore } from '../../src/store/admission-store';
import { AttemptStore } from '../../src/store/attempt-store';
import { AttemptUsageStore } from '../../src/store/attempt-usage-store';
import { PlanStore } from '../../src/store/plan-store';
import { WorktreeStore } from '../../src/store/worktree-store';
import { agentProcessEnded, attemptArrivedAt } from '../../src/workers/agent-slot-interceptor';
import { createAgentWorkers } from '../../src/workers/agent-workers';
import { breakerWaiterWaker } from '../../src/workers/breaker-waiter-waker';
import { slotWaiterWaker } from '../../src/workers/slot-waiter-waker';
import { workerQueueFor } from '../../src/workers/worker-queue';
import { workflowCodeOption } from '../../src/workers/workflow-bundle';
import { TEST_AGENTS_FILE, testEnv } from './test-env';

/**
 * Everything a workflow test needs to talk to the test run's Temporal server and database: a worker
 * connection, a client, a pool. `close()` closes all three so the test process can exit.
 */
export interface Harness {
  connection: NativeConnection;
  client: Client;
  pool: Pool;
  close: () => Promise<void>;
}

type SlotWaker = NonNullable<AgentActivityDeps['wakeSlotWaiter']>;

export interface RunningWorker {
  worker: Worker;
  identity: string;
  /** Shuts the worker down (if it still runs) and waits until it has stopped. */
  stop: () => Promise<void>;
}

let runtimeInstalled = false;

/**
 * The SDK warns on every failed activity and workflow task, and its native core on every determinism
 * error; in these tests failures are the point, so only errors are shown. Call before anything else
 * uses the SDK in the process.
 */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  runtimeInstalled = true;
}

export async function openHarness(): Promise<Harness> {
  installQuietRuntime();
  const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
  const clientConnection = await Connection.connect({ address: testEnv.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: testEnv.namespace });
  const pool = new Pool({ connectionString: testEnv.databaseUrl, max: 10 });
  return {
    connection,
    client,
    pool,
    close: async () => {
      await clientConnection.close();
      await connection.close();
      await pool.end();
    },
  };
}

function runInBackground(worker: Worker, identity: string): RunningWorker {
  const running = worker.run();
  // A worker that fails on its own surfaces in stop(); until then nothing may go unhandled.
  running.catch(() => undefined);
  return {
    worker,
    identity,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}

/** How long after a lock holder's run closed the test workflow workers take its locks back. */
export const LOCK_ENDED_GRACE_SECONDS = 2;

/**
 * A workflow worker as src/workers/workflow-worker.ts builds it, on `taskQueue`; `plans` replaces the
 * plan store its activities write through, `wrapLocks` wraps its lock activities (to hold a request
 * back, say).
 */
export async function runWorkflowWorker(
  h: Harness,
  taskQueue: string,
  options: { plans?: PlanStore; wrapLocks?: (real: LockActivities) => LockActivities } = {},
): Promise<RunningWorker> {
  const locks = createLockActivities({
    client: h.client,
    reapIntervalSeconds: 1,
    endedGraceSeconds: LOCK_ENDED_GRACE_SECONDS,
  });
  const identity = `test-workflow-worker@${taskQueue}`;
  const attempts = new AttemptStore(h.pool);
  const worker = await Worker.create({
    connection: h.connection,
    namespace: testEnv.namespace,
    taskQueue,
    identity,
    ...workflowCodeOption(),
    activities: {
      ...createBookkeepingActivities({ store: attempts }),
      ...createPlanActivities({ plans: options.plans ?? new PlanStore(h.pool), attempts }),
      ...(options.wrapLocks ? options.wrapLocks(locks) : locks),
    },
  });
  return runInBackground(worker, identity);
}

/**
 * An agent worker as src/workers/agent-worker.ts builds it, running the stand-in agents of
 * test/agents/agents.yaml, with `slots` agent slots over its two queues (else Temporal's default
 * activity limit, 100). Heartbeats are more frequent than in production so a cancel reaches the agent
 * within a fraction of a second and the tests stay fast. `shutdownGraceTime` is how long its agents may
 * run on once it stops (else none: they are stopped at once). `saveWork` replaces how an attempt
 * commits its agent's work, and `wrapAgents` wraps its agent activities (to lose an answer, say);
 * `wrapSlotWaker` wraps the wake of the task next in line for a limited agent's slot (to see it happen).
 */
export async function runAgentWorker(
  h: Harness,
  taskQueue: string,
  name = 'agent-worker',
  options: {
    agents?: AgentsFile;
    slots?: number;
    worktreeRoot?: string;
    shutdownGraceTime?: Duration;
    saveWork?: AgentActivityDeps['saveWork'];
    wrapAgents?: (real: AgentActivities) => AgentActivities;
    wrapWorktrees?: (real: WorktreeActivities) => WorktreeActivities;
    wrapSlotWaker?: (real: SlotWaker) => SlotWaker;
  } = {},
): Promise<RunningWorker> {
  const identity = `test-${name}@${taskQueue}`;
  const heartbeatIntervalMs = 100;
  const wrapAgents = options.wrapAgents ?? ((real: AgentActivities) => real);
  const wrapWorktrees = options.wrapWorktrees ?? ((real: WorktreeActivities) => real);
  const wrapSlotWaker = options.wrapSlotWaker ?? ((real: SlotWaker) => real);
  const activities = {
    ...wrapAgents(
      createAgentActivities({
        agents: options.agents ?? loadAgentsFile(TEST_AGENTS_FILE),
        store: new AttemptStore(h.pool),
        admission: new AdmissionStore(h.pool),
        usage: new AttemptUsageStore(h.pool),
        workerIdentity: identity,
        env: process.env,
        heartbeatIntervalMs,
        wakeSlotWaiter: wrapSlotWaker(slotWaiterWaker(h.pool, h.client, new DefaultLogger('ERROR'))),
        wakeBreakerWaiters: breakerWaiterWaker(h.pool, h.client, new DefaultLogger('ERROR')),
        saveWork: options.saveWork ?? taskWorkSaver(),
        agentExited: agentProcessEnded,
        arrivedAt: attemptArrivedAt,
      }),
    ),
    ...wrapWorktrees(
      createWorktreeActivities({
        worktreeRoot: options.worktreeRoot ?? join(tmpdir(), 'atelier-test-worktrees', randomUUID()),
        workerQueue: workerQueueFor(taskQueue, identity),
        store: new WorktreeStore(h.pool),
      }),
    ),
  };
  const [worker, own] = await createAgentWorkers({
    connection: h.connection,
    namespace: testEnv.namespace,
    taskQueue,
    identity,
    activities,
    slots: { mode: 'fixed', total: options.slots ?? 100 },
    heartbeatIntervalMs,
    interceptors: [],
    options: {
      maxHeartbeatThrottleInterval: '200 milliseconds',
      ...(options.shutdownGraceTime !== undefined && { shutdownGraceTime: options.shutdownGraceTime }),
    },
  });
  const shared = runInBackground(worker, identity);
  const mine = runInBackground(own, identity);
  return { worker: shared.worker, identity, stop: async () => void (await Promise.all([shared.stop(), mine.stop()])) };
}
