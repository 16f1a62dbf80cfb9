import type { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { WorktreeActivities } from '../../activities';
import { FRESH_START_MS } from '../../activities/agent/agent.activities';
import type { RunAgentInput, RunAgentOutput } from '../../workflows/definitions';
import { AGENT_ACTIVITY, taskIdsOf } from '../observability/activity-tracker';
import { NoFreeSlot, WorkerDraining, type AgentSlot, type AgentSlotPool } from './agent-slot-pool';

/** The activity that makes a task's worktree on this worker (worktree.activities.ts), binding the task here. */
const PREPARE_WORKTREE_ACTIVITY: keyof WorktreeActivities = 'prepareWorktree';

/**
 * The answer to an attempt this worker hands back without starting its agent: held back, like one the
 * cluster-wide gate refuses, so it costs the task none of its attempts; due at once, so it is asked
 * again at once, of the agent workers still polling.
 * - `worker_draining`: the worker shuts down.
 * - `worker_busy`: a shared-queue attempt found no free slot here (a poll was under way when an
 *   own-queue agent took the last one); in line here it would spend a start-to-close timeout that has
 *   no room for it, so it goes back to the queue for a worker with room.
 */
const handedBack = (attempt: RunAgentInput, kind: 'worker_draining' | 'worker_busy'): RunAgentOutput => ({
  exitCode: 0,
  outputBytes: 0,
  outputTail: '',
  waiting: {
    kind,
    agent: attempt.agent,
    message:
      kind === 'worker_draining'
        ? 'its agent worker is shutting down: the attempt goes to another'
        : 'the agent worker that took the attempt had no free slot: it goes back to the queue',
    until: Date.now(),
  },
});

/** The slot of each attempt under way, by its activity's context. */
const slotsOfAttempts = new WeakMap<Context, AgentSlot>();
/** When each attempt under way reached this worker (`performance.now()`), by its activity's context. */
const arrivalsOfAttempts = new WeakMap<Context, number>();

/**
 * When the attempt of `ctx` reached this worker (`performance.now()`), before it waited in line for a
 * slot: its start-to-close timeout runs from about then. Undefined outside an attempt seen here.
 */
export function attemptArrivedAt(ctx: Context): number | undefined {
  return arrivalsOfAttempts.get(ctx);
}

/**
 * For the agent activity, once the agent's process has exited: its slot goes to the next agent now,
 * while the attempt's records are still being written. Does nothing outside an attempt with a slot.
 */
export function agentProcessEnded(ctx: Context): void {
  slotsOfAttempts.get(ctx)?.agentEnded();
}

/**
 * Holds each agent attempt (`runAgent`) until it has one of the process's agent slots, and frees the
 * slot when the agent's process has ended (`agentProcessEnded`) or, at the latest, when the attempt
 * ends. A worktree prepared here keeps a slot for its task's first attempt (`AgentSlotPool.reserve`),
 * and an attempt held back by an open breaker keeps its own for the chain's next agent, when there is
 * one (`RunAgentInput.moreInChain`); the other
 * activities (the worktree's git operations) pass straight through.
 * The slot comes before the attempt's admission by the cluster-wide gate, so an attempt in line holds
 * no cluster-wide slot that another worker could use, and starts as soon as it is admitted.
 *
 * While in line the attempt heartbeats every `heartbeatIntervalMs`: Temporal delivers a cancel only in
 * the answer to a heartbeat, and would otherwise time the attempt out as lost. A cancel takes it out of
 * line and ends it as cancelled; the worker's shutdown (`AgentSlotPool.drain`) answers it held back
 * (`worker_draining`), never started, so the workflow asks again elsewhere. With a fixed number of
 * slots only own-queue attempts wait in line (their start-to-close timeout has an hour's room for it):
 * a shared-queue attempt that finds no free slot is answered held back (`worker_busy`) and goes back
 * to the queue (AgentSlotPool's `handsBack`).
 *
 * Put it first in `interceptors.activity`: the interceptors after it (the activity tracker) then see
 * only attempts that run, so "running agents" never counts one that waits.
 */
export function agentSlotInterceptor(pool: AgentSlotPool, heartbeatIntervalMs: number): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        const type = ctx.info.activityType;
        if (type !== AGENT_ACTIVITY && type !== PREPARE_WORKTREE_ACTIVITY) return next(input);
        const { taskId } = taskIdsOf(input.args, ctx.info.workflowExecution?.workflowId);
        if (type === PREPARE_WORKTREE_ACTIVITY) {
          const prepared = await next(input);
          if (taskId !== undefined) pool.reserve(taskId);
          return prepared;
        }
        const inLineSince = performance.now();
        arrivalsOfAttempts.set(ctx, inLineSince);
        const heartbeat = setInterval(() => ctx.heartbeat({ waitingForSlot: true }), heartbeatIntervalMs);
        // Attempts of histories from before admission (not gated) know no held-back answer: they fail
        // when the worker drains, and wait in line for a slot on any queue.
        const attempt = input.args[0] as RunAgentInput | undefined;
        let slot: AgentSlot;
        try {
          slot = await pool.take(ctx.info.taskQueue, taskId, ctx.cancellationSignal, attempt?.gated === true);
        } catch (err) {
          if (type !== AGENT_ACTIVITY || !attempt?.gated) throw err;
          if (err instanceof WorkerDraining) return handedBack(attempt, 'worker_draining');
          if (err instanceof NoFreeSlot) return handedBack(attempt, 'worker_busy');
          throw err;
        } finally {
          clearInterval(heartbeat);
        }
        // After a wait, the attempt starts as fresh as one that did not wait (FRESH_START_MS).
        if (performance.now() - inLineSince >= FRESH_START_MS) ctx.heartbeat({ waitingForSlot: false });
        slotsOfAttempts.set(ctx, slot);
        try {
          const result = await next(input);
          // The chain tries its next agent at once, on this queue for a worktree task; after its last
          // one the task waits, and the slot goes to others.
          const heldBack = (result as RunAgentOutput | undefined)?.waiting?.kind === 'breaker_open';
          if (heldBack && attempt?.moreInChain !== false) slot.keep();
          return result;
        } finally {
          slot();
        }
      },
    },
  });
}
