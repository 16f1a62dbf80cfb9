import type { WorkerOptions } from '@temporalio/worker';
import type { AtelierConfig } from '../config/env';
import type { SlotMode } from '../store/worker-store';

/**
 * With `ATELIER_AGENT_SLOTS=auto`, a new agent slot is handed out at most this often past the first:
 * an agent CLI takes seconds to reach its working CPU and memory, and the tuner must see that load
 * before it decides on the next one, or a burst of tasks would start far more agents than fit.
 */
export const AGENT_SLOT_RAMP = '3 seconds';

export interface AgentSlots {
  options: Pick<WorkerOptions, 'maxConcurrentActivityTaskExecutions' | 'tuner'>;
  mode: SlotMode;
  /** The fixed limit, or the most the tuner may hand out. */
  total: number;
}

/**
 * How many agents one agent worker runs at once: a fixed number (`ATELIER_AGENT_SLOTS=4`), or `auto`:
 * Temporal's resource-based tuner, which hands out slots while the machine stays under the target CPU
 * and memory use, between one and `ATELIER_AGENT_MAX_SLOTS`.
 */
export function agentSlots(config: AtelierConfig): AgentSlots {
  if (config.ATELIER_AGENT_SLOTS !== 'auto') {
    const total = config.ATELIER_AGENT_SLOTS;
    return { options: { maxConcurrentActivityTaskExecutions: total }, mode: 'fixed', total };
  }
  return {
    options: {
      tuner: {
        tunerOptions: {
          targetCpuUsage: config.ATELIER_AGENT_TARGET_CPU,
          targetMemoryUsage: config.ATELIER_AGENT_TARGET_MEMORY,
        },
        activityTaskSlotOptions: {
          minimumSlots: 1,
          maximumSlots: config.ATELIER_AGENT_MAX_SLOTS,
          rampThrottle: AGENT_SLOT_RAMP,
        },
      },
    },
    mode: 'resource-based',
    total: config.ATELIER_AGENT_MAX_SLOTS,
  };
}
