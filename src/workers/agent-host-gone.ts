import { WORKER_HEARTBEAT_MS } from '../observability/worker-observability';
import { WORKER_LOST_AFTER_SECONDS, type WorkerStore } from '../store/worker-store';

/**
 * Tells whether the agent workers of a machine are gone (their worktrees with their disk), waiting for
 * the registry to tell: gone once none has heartbeat for WORKER_LOST_AFTER_SECONDS (or there is none);
 * alive as soon as one heartbeats anew (a worker restarted in its pod); alive too when neither is known
 * within that time and a little more (the registry unreadable), as the safe answer.
 */
export function agentHostGone(
  store: Pick<WorkerStore, 'lastAgentHeartbeat'>,
  { pollMs = WORKER_HEARTBEAT_MS, lostAfterSeconds = WORKER_LOST_AFTER_SECONDS } = {},
): (host: string) => Promise<boolean> {
  return async (host) => {
    const deadline = Date.now() + lostAfterSeconds * 1000 + 2 * pollMs;
    let seen: number | undefined;
    for (;;) {
      const last = await store.lastAgentHeartbeat(host).catch(() => null);
      if (last === undefined || (last !== null && last.ageSeconds > lostAfterSeconds)) return true;
      if (last !== null) {
        if (seen !== undefined && last.atMs > seen) return false;
        seen ??= last.atMs;
      }
      if (Date.now() + pollMs > deadline) return false;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
}
