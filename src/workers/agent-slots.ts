import type { ResourceBasedTunerOptions } from '@temporalio/worker';
import type { AtelierConfig } from '../config/env';

/**
 * With `ATELIER_AGENT_SLOTS=auto`, a new agent slot is handed out at most this often past the first:
 * an agent CLI takes seconds to reach its working CPU and memory, and the tuner must see that load
 * before it decides on the next one, or a burst of tasks would start far more agents than fit.
 */
export const AGENT_SLOT_RAMP = '3 seconds';

/**
 * How many agents one agent worker process runs at once, over both of its queues: a fixed number
 * (`ATELIER_AGENT_SLOTS=4`), or `auto`: Temporal's resource-based tuner hands out slots while the
 * machine stays under the `targets` of CPU and memory use, between one and `ATELIER_AGENT_MAX_SLOTS`
 * (then `total`: the most it may hand out).
 */
export type AgentSlots =
  { mode: 'fixed'; total: number } | { mode: 'resource-based'; total: number; targets: ResourceBasedTunerOptions };

export function agentSlots(config: AtelierConfig): AgentSlots {
  if (config.ATELIER_AGENT_SLOTS !== 'auto') return { mode: 'fixed', total: config.ATELIER_AGENT_SLOTS };
  return {
    mode: 'resource-based',
    total: config.ATELIER_AGENT_MAX_SLOTS,
    targets: { targetCpuUsage: config.ATELIER_AGENT_TARGET_CPU, targetMemoryUsage: config.ATELIER_AGENT_TARGET_MEMORY },
  };
}
