import type { AgentsFile } from '../../config/agents-file';
import type { FieldProblem } from '../http/validation';

export interface ChainRequest {
  agent?: string;
  agents?: string[];
  model?: string;
}

/** The agents a task runs with, head first, or the problems that make the request a 400. */
export type ResolvedChain = { ok: true; chain: string[] } | { ok: false; problems: FieldProblem[] };

const needsModel = (command: string[]): boolean => command.some((arg) => arg.includes('{model}'));

/**
 * Resolves a task's fallback chain: `agents` when given (with `agent`, if also given, at its head),
 * else `agent` (or the default agent) followed by its profile's `fallback`. Every agent must exist,
 * and every agent after the head must have its own model when its command needs one (the task's
 * `model` is the head's).
 */
export function resolveChain(req: ChainRequest, agents: AgentsFile): ResolvedChain {
  const known = Object.keys(agents.agents);
  const problems: FieldProblem[] = [];
  if (req.agents !== undefined) {
    // Own keys only: names such as "toString" or "__proto__" are no agents.
    const unknown = req.agents.filter((a) => !Object.hasOwn(agents.agents, a));
    if (unknown.length > 0) {
      problems.push({
        field: 'agents',
        problems: [`unknown agent(s) ${unknown.map((a) => `"${a}"`).join(', ')}; known: ${known.join(', ')}`],
      });
    }
    if (req.agent !== undefined && req.agents[0] !== req.agent) {
      problems.push({ field: 'agents', problems: [`agents must start with agent "${req.agent}" when both are given`] });
    }
    if (problems.length > 0) return { ok: false, problems };
    return { ok: true, chain: req.agents };
  }
  const head = req.agent ?? agents.defaultAgent;
  const profile = Object.hasOwn(agents.agents, head) ? agents.agents[head] : undefined;
  if (!profile) {
    return {
      ok: false,
      problems: [{ field: 'agent', problems: [`unknown agent "${head}"; known: ${known.join(', ')}`] }],
    };
  }
  return { ok: true, chain: [head, ...(profile.fallback ?? [])] };
}

/** Fallback agents that would run without a model their command needs. */
export function fallbacksWithoutModel(chain: string[], agents: AgentsFile): string[] {
  return chain.slice(1).filter((name) => {
    const profile = agents.agents[name];
    return profile !== undefined && profile.model === undefined && needsModel(profile.command);
  });
}
