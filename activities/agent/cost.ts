import type { AgentProfile } from '../../src/config/agents-file';
import type { ParsedOutput } from './parsers/types';

/**
 * An attempt's cost in USD: what the agent reported, else its tokens at the profile's prices; unknown
 * (undefined) when it reported neither a cost nor tokens, or the profile has no prices.
 */
export function attemptCost(parsed: ParsedOutput, pricing: AgentProfile['pricing']): number | undefined {
  if (parsed.costUsd !== undefined) return parsed.costUsd;
  if (!pricing || (parsed.inputTokens === undefined && parsed.outputTokens === undefined)) return undefined;
  const usd =
    ((parsed.inputTokens ?? 0) * pricing.inputPerMillionUsd +
      (parsed.outputTokens ?? 0) * pricing.outputPerMillionUsd) /
    1_000_000;
  return Math.round(usd * 1e6) / 1e6;
}
