import {
  Worker,
  type ActivityInterceptorsFactory,
  type NativeConnection,
  type WorkerOptions,
  type WorkerTuner,
} from '@temporalio/worker';
import { AgentSlotPool } from './agent-slot-pool';
import { agentSlotInterceptor } from './agent-slot-interceptor';
import { AGENT_SLOT_RAMP, type AgentSlots } from './agent-slots';
import { workerQueueFor } from './worker-queue';

export interface AgentWorkersOptions {
  connection: NativeConnection;
  namespace: string;
  /** The shared agent queue; the process's own queue is named after it and `identity`. */
  taskQueue: string;
  identity: string;
  activities: WorkerOptions['activities'];
  slots: AgentSlots;
  /** How often an agent attempt in line for a slot heartbeats: as often as a running one. */
  heartbeatIntervalMs: number;
  /** Activity interceptors (the tracker); they run once an agent attempt has its slot. */
  interceptors: ActivityInterceptorsFactory[];
  /** What else both workers share: heartbeat throttling, shutdown grace. */
  options?: Pick<WorkerOptions, 'maxHeartbeatThrottleInterval' | 'shutdownGraceTime'>;
}

/** An agent worker runs no workflows, local activities or Nexus operations: these suppliers go unused. */
const UNUSED = { type: 'fixed-size', numSlots: 1 } as const;

/**
 * The shared queue's slots. Fixed: the pool's supplier, which takes work only while an agent could
 * start at once. Auto: Temporal's resource-based tuner, which cannot be combined with the pool's
 * supplier, so it does not count the own queue's agents; their load on the machine holds it back
 * instead, and the pool still caps the process at the tuner's maximum. It needs no controller shared
 * with the own queue's worker, which has no tuner.
 */
function sharedQueueTuner(slots: AgentSlots, pool: AgentSlotPool): WorkerTuner {
  if (slots.mode === 'fixed') {
    return {
      activityTaskSlotSupplier: pool.sharedQueueSupplier,
      workflowTaskSlotSupplier: UNUSED,
      localActivityTaskSlotSupplier: UNUSED,
      nexusTaskSlotSupplier: UNUSED,
    };
  }
  return {
    tunerOptions: slots.targets,
    activityTaskSlotOptions: { minimumSlots: 1, maximumSlots: slots.total, rampThrottle: AGENT_SLOT_RAMP },
  };
}

/**
 * As soon as one of `workers` begins to shut down (a signal, `shutdown()` or a fatal error: the SDK goes
 * through `shutdown()` for each), drains `pool` and shuts the others down too. A worker that shuts
 * down stops polling but lets the activities in hand run on: an attempt in line for a slot would
 * otherwise start an agent that the end of the grace period kills. And a worker left polling beside
 * a drained pool would take attempts only to refuse them.
 */
function shutDownTogether(workers: Worker[], pool: AgentSlotPool): void {
  const shutdowns = workers.map((w) => w.shutdown.bind(w));
  for (const worker of workers) {
    worker.shutdown = () => {
      pool.drain();
      workers.forEach((other, i) => {
        if (other === worker || other.getState() === 'RUNNING') shutdowns[i]?.();
      });
    };
  }
}

/**
 * The two Temporal workers of an agent worker process: on the shared agent queue, and on its own queue
 * (the attempts, commit and removal of the tasks whose worktree it prepared). They share one
 * AgentSlotPool, so the process runs at most `slots.total` agents over both queues; the own queue's
 * worker keeps Temporal's default limit, since its tasks can run nowhere else (see AgentSlotPool).
 * When either begins to shut down, so does the other, and no agent starts any more (`shutDownTogether`).
 */
export async function createAgentWorkers(o: AgentWorkersOptions): Promise<[Worker, Worker]> {
  const pool = new AgentSlotPool(o.slots.total, o.taskQueue, o.slots.mode === 'fixed');
  const create = (taskQueue: string, tuner?: WorkerTuner): Promise<Worker> =>
    Worker.create({
      connection: o.connection,
      namespace: o.namespace,
      taskQueue,
      identity: o.identity,
      activities: o.activities,
      interceptors: { activity: [agentSlotInterceptor(pool, o.heartbeatIntervalMs), ...o.interceptors] },
      ...o.options,
      ...(tuner && { tuner }),
    });
  const workers: [Worker, Worker] = [
    await create(o.taskQueue, sharedQueueTuner(o.slots, pool)),
    await create(workerQueueFor(o.taskQueue, o.identity)),
  ];
  shutDownTogether(workers, pool);
  return workers;
}
