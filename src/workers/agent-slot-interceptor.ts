import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { AGENT_ACTIVITY } from '../observability/activity-tracker';
import type { AgentSlotPool } from './agent-slot-pool';

/**
 * Holds each agent attempt (`runAgent`) until it has one of the process's agent slots, and frees the
 * slot when the attempt ends; other activities (the worktree's git operations) pass straight through.
 * The slot comes before the attempt's admission by the cluster-wide gate, so an attempt in line holds
 * no cluster-wide slot that another worker could use, and starts as soon as it is admitted.
 *
 * While in line the attempt heartbeats every `heartbeatIntervalMs`: Temporal delivers a cancel only in
 * the answer to a heartbeat, and would otherwise time the attempt out as lost. A cancel takes it out of
 * line and ends it as cancelled.
 *
 * Put it first in `interceptors.activity`: the interceptors after it (the activity tracker) then see
 * only attempts that run, so "running agents" never counts one that waits.
 */
export function agentSlotInterceptor(pool: AgentSlotPool, heartbeatIntervalMs: number): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        if (ctx.info.activityType !== AGENT_ACTIVITY) return next(input);
        const heartbeat = setInterval(() => ctx.heartbeat({ waitingForSlot: true }), heartbeatIntervalMs);
        let release: () => void;
        try {
          release = await pool.take(ctx.info.taskQueue, ctx.cancellationSignal);
        } finally {
          clearInterval(heartbeat);
        }
        try {
          return await next(input);
        } finally {
          release();
        }
      },
    },
  });
}
