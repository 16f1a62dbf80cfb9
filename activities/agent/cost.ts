import type { AgentProfile } from '../../src/config/agents-file';
import type { ParsedOutput } from './parsers/types';

/**
 * An attempt's cost in USD: what the agent reported, else its tokens at the profile's prices; unknown
 * (undefined) when it reported neither a cost nor tokens, or the profile has no prices.
 *
 * Input read from the prompt cache costs the cached price. Without one it costs the input price:
 * providers bill cache reads at a tenth to a half of it, by model, and a cost that budgets stop on must
 * not come out below what was billed. An agent's long session rereads its context from the cache at
 * every turn, so set the cached price to keep budgets from being reached early.
 */
export function attemptCost(parsed: ParsedOutput, pricing: AgentProfile['pricing']): number | undefined {
  if (parsed.costUsd !== undefined) return parsed.costUsd;
  if (!pricing || (parsed.inputTokens === undefined && parsed.outputTokens === undefined)) return undefined;
  const input = parsed.inputTokens ?? 0;
  const cached = Math.min(parsed.cachedInputTokens ?? 0, input);
  const usd =
    ((input - cached) * pricing.inputPerMillionUsd +
      cached * (pricing.cachedInputPerMillionUsd ?? pricing.inputPerMillionUsd) +
      (parsed.outputTokens ?? 0) * pricing.outputPerMillionUsd) /
    1_000_000;
  return Math.round(usd * 1e6) / 1e6;
}
