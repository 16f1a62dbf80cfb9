import { Inject, Injectable } from '@nestjs/common';
import type { AgentsFile } from '../../config/agents-file';
import { breakerNow, DEFAULT_BREAKER } from '../../gate/breaker';
import { AgentStatusStore, idleAgentStatus, type AgentStatusRow } from '../../store/agent-status-store';
import { AGENTS } from '../tokens';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** `GET /v1/agents`: each profile of the agents file with its live state from the gate's tables. */
@Injectable()
export class AgentsService {
  constructor(
    @Inject(AGENTS) private readonly agents: AgentsFile,
    private readonly status: AgentStatusStore,
  ) {}

  async list() {
    const { now, agents } = await this.status.all();
    const items = Object.entries(this.agents.agents)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, profile]) => {
        const s: AgentStatusRow | undefined = agents.get(name);
        const breakerConfig = { ...DEFAULT_BREAKER, ...profile.breaker };
        const { state, failures } = breakerNow((s ?? idleAgentStatus(name)).breaker, now, breakerConfig);
        const finished = s?.recent.finished ?? 0;
        const succeeded = s?.recent.succeeded ?? 0;
        return {
          name,
          output: profile.output,
          model: profile.model ?? null,
          fallback: profile.fallback ?? [],
          breaker: {
            state,
            openUntil: state === 'open' ? iso(s?.breaker.openUntil ?? null) : null,
            failures,
            ...breakerConfig,
          },
          running: s?.running ?? 0,
          maxConcurrent: profile.limits?.maxConcurrent ?? null,
          startsLastMinute: s?.startsLastMinute ?? 0,
          startsPerMinute: profile.limits?.startsPerMinute ?? null,
          successRate: { window: '1h', finished, succeeded, rate: finished === 0 ? null : succeeded / finished },
          spendTodayUsd: s?.spendTodayUsd ?? 0,
        };
      });
    return { defaultAgent: this.agents.defaultAgent, items };
  }
}
