import { Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import type { AgentsFile } from '../../config/agents-file';
import { breakerNow, DEFAULT_BREAKER } from '../../gate/breaker';
import { AgentStatusStore, idleAgentStatus, type AgentStatusRow } from '../../store/agent-status-store';
import { BreakerResetStore } from '../../store/breaker-reset-store';
import { wakeWaitingTasks } from '../../temporal/wake-waiting-tasks';
import { AGENTS, TEMPORAL_CLIENT } from '../tokens';
import type { AgentListView, AgentView, BreakerResetView } from './dto/agent.view';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/**
 * How long a breaker reset's wake may take, all its signals together (up to WAKE_LIMIT tasks, 32 at a
 * time): the reset answers within the 15 s api.md promises for a request, however slow Temporal is.
 */
export const RESET_WAKE_MS = 5000;

/**
 * `GET /v1/agents`: each profile of the agents file with its live state from the gate's tables;
 * `POST /v1/agents/:name/breaker/reset`: an operator closes a breaker.
 */
@Injectable()
export class AgentsService {
  private readonly logger = new Logger('Agents');

  constructor(
    @Inject(AGENTS) private readonly agents: AgentsFile,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly status: AgentStatusStore,
    private readonly breakers: BreakerResetStore,
  ) {}

  /**
   * Closes the agent's breaker (its provider is back, its key replaced) and wakes the tasks waiting for
   * it, so they ask again now rather than at their next look; answers the agent as GET lists it, and how
   * many tasks were woken. A task that cannot be woken (it ended meanwhile, or Temporal did not answer
   * within RESET_WAKE_MS) is left to its next look.
   */
  async resetBreaker(name: string): Promise<BreakerResetView> {
    if (!Object.hasOwn(this.agents.agents, name)) throw new NotFoundException(`no agent "${name}" in the agents file`);
    const waiting = await this.breakers.reset(name);
    const woken = await wakeWaitingTasks(this.temporal, waiting, {
      what: `${name}'s breaker`,
      logger: this.logger,
      deadline: Date.now() + RESET_WAKE_MS,
    });
    // Listed: it is in the agents file (checked above), and list() lists every agent there.
    const agent = (await this.list()).items.find((a) => a.name === name) as AgentView;
    return { ...agent, woken };
  }

  async list(): Promise<AgentListView> {
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
