import { FAILURE_CLASSES, type FailureClass } from '../../../workflows/definitions';
import { httpStatusClass, matchPatterns } from './error-patterns';
import { believableReset, resetTimeIn } from './reset-time';
import type { ParsedOutput } from './types';

/** What Claude Code's messages before the result told us (stream-json lines, or the json array form). */
export interface ClaudeContext {
  sessionId?: string;
  /** A `rate_limit_event` whose status was `rejected`, without overage to go on: the run hit its limit. */
  rateLimited: boolean;
  /** `resetsAt` of the latest rejected rate-limit event (epoch seconds in the CLI's output). */
  resetsAt?: number;
  assistantMessages: number;
}

export const newClaudeContext = (): ClaudeContext => ({ rateLimited: false, assistantMessages: 0 });

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The reset time the rate-limit event reported, in epoch ms. */
const reportedReset = (ctx: ClaudeContext): number | undefined =>
  ctx.resetsAt === undefined ? undefined : ctx.resetsAt * 1000;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A `rate_limit_info` whose plan goes on in extra usage (overage) past the window it reports. */
const onOverage = (info: Record<string, unknown>): boolean =>
  info.isUsingOverage === true || info.overageStatus === 'allowed' || info.overageStatus === 'allowed_warning';

/** Takes in one message that is not the result (system init, assistant, rate_limit_event, …). */
export function readClaudeMessage(message: Record<string, unknown>, ctx: ClaudeContext): void {
  ctx.sessionId = str(message.session_id) ?? ctx.sessionId;
  if (message.type === 'assistant') ctx.assistantMessages += 1;
  if (message.type === 'rate_limit_event') {
    // Claude Code reports its plan's limits on ordinary runs too (`allowed`, `allowed_warning`), with
    // the window's reset hours away: only a `rejected` one says this run hit the limit, and when it lifts.
    // Not while the plan's extra usage goes on where the window stops (`isUsingOverage`, an `overageStatus`
    // that allows it): the run goes on, and what ends it later is not that window.
    const info = (message.rate_limit_info ?? {}) as Record<string, unknown>;
    if (info.status === 'rejected' && !onOverage(info)) {
      ctx.rateLimited = true;
      ctx.resetsAt = num(info.resetsAt) ?? ctx.resetsAt;
    }
  }
}

/** The class of a result that reports an error: its HTTP status first, then its words. */
function errorClass(result: Record<string, unknown>, text: string, ctx: ClaudeContext): FailureClass {
  if (result.subtype === 'error_max_turns') return FAILURE_CLASSES.maxTurns;
  const status = num(result.api_error_status);
  if (status === 400 && /too long|context/i.test(text)) return FAILURE_CLASSES.contextOverflow;
  const byStatus = status === undefined ? undefined : httpStatusClass(status);
  if (byStatus) return byStatus;
  if (ctx.rateLimited || result.error === 'rate_limit') return FAILURE_CLASSES.rateLimited;
  return matchPatterns(text) ?? FAILURE_CLASSES.badOutput;
}

/**
 * Reads Claude Code's final `type: "result"` message: the answer, cost, usage, turns and session, and
 * whether the run failed although the CLI may have exited 0 (`is_error`, an `error_*` subtype). Its
 * `usage.input_tokens` are the uncached ones: the input is their sum with the cache writes
 * (`cache_creation_input_tokens`) and reads (`cache_read_input_tokens`, the cached part).
 */
export function readClaudeResult(result: Record<string, unknown>, ctx: ClaudeContext, now: number): ParsedOutput {
  const usage = (result.usage ?? {}) as Record<string, unknown>;
  const input = [usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens]
    .map(num)
    .filter((n): n is number => n !== undefined);
  const text = str(result.result);
  const parsed: ParsedOutput = {
    final: true,
    text,
    costUsd: num(result.total_cost_usd) ?? num(result.cost_usd),
    inputTokens: input.length > 0 ? input.reduce((a, b) => a + b, 0) : undefined,
    cachedInputTokens: num(usage.cache_read_input_tokens),
    outputTokens: num(usage.output_tokens),
    turns: num(result.num_turns) ?? (ctx.assistantMessages || undefined),
    sessionId: str(result.session_id) ?? ctx.sessionId,
  };
  const subtype = str(result.subtype) ?? 'success';
  if (result.is_error === true || subtype !== 'success') {
    const errors = Array.isArray(result.errors) ? result.errors.map(String).join('; ') : '';
    const words = text || errors || subtype;
    parsed.failureClass = errorClass(result, words, ctx);
    parsed.error = `${subtype}: ${words}`.slice(0, 2000);
    if (parsed.failureClass === FAILURE_CLASSES.rateLimited) {
      parsed.resetAt = believableReset(reportedReset(ctx), now) ?? resetTimeIn(words, now);
    }
  } else if (text === undefined) {
    parsed.failureClass = FAILURE_CLASSES.badOutput;
    parsed.error = 'the result message has no result text';
  }
  return parsed;
}

/** Without a result message: only what the stream said on the way (a rejected rate limit, say). */
export function claudeWithoutResult(ctx: ClaudeContext): ParsedOutput {
  return {
    final: false,
    sessionId: ctx.sessionId,
    turns: ctx.assistantMessages || undefined,
    ...(ctx.rateLimited
      ? {
          failureClass: FAILURE_CLASSES.rateLimited,
          error: 'rate limit rejected the run',
          resetAt: believableReset(reportedReset(ctx), Date.now()),
        }
      : {}),
  };
}
