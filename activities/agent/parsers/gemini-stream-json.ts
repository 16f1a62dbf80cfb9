import { FAILURE_CLASSES } from '../../../workflows/definitions';
import { resetTimeIn } from './reset-time';
import { BROKEN_TURN, geminiErrorClass, geminiExitCodeClass, INVALID_STREAM } from './gemini-common';
import { LineSplitter, jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * The result's `output_tokens` are the answer's alone (`candidates`), but thinking bills at the output
 * rate too: `total_tokens - input_tokens` counts it (with tool-use prompts, which the stats do not split off).
 */
function outputTokens(stats: Record<string, unknown>): number | undefined {
  const total = num(stats.total_tokens);
  const input = num(stats.input_tokens);
  return total !== undefined && input !== undefined ? total - input : num(stats.output_tokens);
}

/**
 * The prompt tokens read from Gemini's cache: `cached`, a part of `input_tokens`. Without `input_tokens`
 * the input is `input`, which leaves them out already.
 */
function cachedTokens(stats: Record<string, unknown>): number | undefined {
  return num(stats.input_tokens) === undefined ? undefined : num(stats.cached);
}

/**
 * `gemini --output-format stream-json`: one event per line: `init` (session, model), `message`
 * (assistant text, in deltas), `tool_use`, `tool_result`, `error` (warnings and errors on the way), and
 * a final `result` with `status` (`success` or `error`) and `stats`. A turn's text ends at its tool
 * calls; the answer is the last turn's.
 */
export function geminiStreamJsonParser(): OutputParser {
  const lines = new LineSplitter();
  let sessionId: string | undefined;
  let text = '';
  let sawText = false;
  let turns = 0;
  let inTurn = false;
  let lastError: string | undefined;
  let result: Record<string, unknown> | undefined;
  const read = (line: string): void => {
    const event = jsonObject(line);
    if (!event) return;
    switch (event.type) {
      case 'init':
        if (typeof event.session_id === 'string') sessionId = event.session_id;
        break;
      case 'message':
        if (event.role === 'assistant' && typeof event.content === 'string') {
          // The answer is the last turn's text, as in Gemini CLI's json output: what the model said
          // before its tool calls was on its way there.
          if (!inTurn) {
            turns += 1;
            text = '';
          }
          inTurn = true;
          text += event.content;
          sawText = true;
        }
        break;
      case 'tool_use':
      case 'tool_result':
        inTurn = false;
        break;
      case 'error':
        if (typeof event.message === 'string' && event.severity !== 'warning') lastError = event.message;
        break;
      case 'result':
        result = event;
        break;
    }
  };
  return {
    hasFinalRecord: true,
    exitCodeClass: geminiExitCodeClass,
    push(stream, chunk) {
      if (stream === 'stdout') lines.push(chunk).forEach(read);
    },
    finish(): ParsedOutput {
      lines.end().forEach(read);
      const stats = (result?.stats ?? {}) as Record<string, unknown>;
      const parsed: ParsedOutput = {
        final: result !== undefined,
        text: sawText ? text : undefined,
        sessionId,
        turns: turns || undefined,
        inputTokens: num(stats.input_tokens) ?? num(stats.input),
        cachedInputTokens: cachedTokens(stats),
        outputTokens: outputTokens(stats),
      };
      if (result && result.status !== 'success') {
        // Gemini CLI reports its failures in the result's `error`, but for a model turn that came back
        // empty or broken: an `error` event then, in its words, and a result without one. Any other
        // error event is classed by its words alone.
        const message = lastError ?? `status ${String(result.status)}`;
        const error = (result.error ??
          (lastError !== undefined && BROKEN_TURN.test(lastError)
            ? { type: INVALID_STREAM, message }
            : { message })) as Record<string, unknown>;
        parsed.failureClass = geminiErrorClass(error);
        parsed.error = String(error.message ?? error.type ?? 'error').slice(0, 2000);
        if (parsed.failureClass === FAILURE_CLASSES.rateLimited) parsed.resetAt = resetTimeIn(parsed.error, Date.now());
      } else if (result && !sawText) {
        parsed.failureClass = FAILURE_CLASSES.badOutput;
        parsed.error = 'the run succeeded without an assistant message';
      } else if (!result && lastError !== undefined) {
        parsed.error = lastError;
      }
      return parsed;
    },
  };
}
