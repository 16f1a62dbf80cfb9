import { FAILURE_CLASSES } from '../../../workflows/definitions';
import { matchPatterns } from './error-patterns';
import { resetTimeIn } from './reset-time';
import { LineSplitter, jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const messageOf = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') {
    return (v as { message: string }).message;
  }
  return undefined;
};

/**
 * `codex exec --json`: one event per line. `thread.started` names the session, `item.completed` items
 * of type `agent_message` carry the answer (the last one is final), `turn.completed` ends a turn with
 * its token usage (`input_tokens` counts the `cached_input_tokens` too), `turn.failed` and `error`
 * report failures.
 */
export function codexJsonlParser(): OutputParser {
  const lines = new LineSplitter();
  let sessionId: string | undefined;
  let text: string | undefined;
  let completed = 0;
  let failed: string | undefined;
  let lastError: string | undefined;
  let inputTokens = 0;
  let cachedInputTokens = 0;
  let outputTokens = 0;
  let sawUsage = false;
  const read = (line: string): void => {
    const event = jsonObject(line);
    if (!event) return;
    switch (event.type) {
      case 'thread.started':
        if (typeof event.thread_id === 'string') sessionId = event.thread_id;
        break;
      case 'item.completed': {
        const item = (event.item ?? {}) as Record<string, unknown>;
        if (
          (item.type === 'agent_message' || item.item_type === 'assistant_message') &&
          typeof item.text === 'string'
        ) {
          text = item.text;
        }
        break;
      }
      case 'turn.completed': {
        completed += 1;
        const usage = (event.usage ?? {}) as Record<string, unknown>;
        if (event.usage) sawUsage = true;
        inputTokens += num(usage.input_tokens);
        cachedInputTokens += num(usage.cached_input_tokens);
        outputTokens += num(usage.output_tokens);
        break;
      }
      case 'turn.failed':
        failed = messageOf(event.error) ?? 'turn failed';
        break;
      case 'error':
        lastError = messageOf(event) ?? messageOf(event.error) ?? 'error';
        break;
    }
  };
  return {
    hasFinalRecord: true,
    push(stream, chunk) {
      if (stream === 'stdout') lines.push(chunk).forEach(read);
    },
    finish(): ParsedOutput {
      lines.end().forEach(read);
      const parsed: ParsedOutput = {
        final: completed > 0 || failed !== undefined,
        text,
        sessionId,
        turns: completed || undefined,
        inputTokens: sawUsage ? inputTokens : undefined,
        cachedInputTokens: sawUsage ? cachedInputTokens : undefined,
        outputTokens: sawUsage ? outputTokens : undefined,
      };
      const error = failed ?? (completed === 0 ? lastError : undefined);
      if (error !== undefined) {
        parsed.failureClass = matchPatterns(error) ?? FAILURE_CLASSES.badOutput;
        parsed.error = error.slice(0, 2000);
        if (parsed.failureClass === FAILURE_CLASSES.rateLimited) parsed.resetAt = resetTimeIn(error, Date.now());
      } else if (completed > 0 && text === undefined) {
        parsed.failureClass = FAILURE_CLASSES.badOutput;
        parsed.error = 'the turn completed without an agent message';
      }
      return parsed;
    },
  };
}
