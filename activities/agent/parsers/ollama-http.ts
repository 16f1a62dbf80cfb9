import { FAILURE_CLASSES } from '../../../workflows/definitions';
import { httpStatusClass, matchPatterns } from './error-patterns';
import { LineSplitter, jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput, RunEnd } from './types';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The `error` of a JSON error body, or the body itself. */
const errorText = (body: string): string => {
  const parsed = jsonObject(body);
  return typeof parsed?.error === 'string' ? parsed.error : body.trim();
};

/**
 * Ollama's `POST /api/generate` with `stream: true` (the agent worker makes the call): NDJSON chunks
 * `{response, done: false}`, then `{done: true, prompt_eval_count, eval_count, …}`. Errors come as an
 * HTTP status with a `{"error": "…"}` body (it lands on stderr), or as an `{"error"}` line mid-stream.
 */
export function ollamaHttpParser(): OutputParser {
  const lines = new LineSplitter();
  let text = '';
  let done: Record<string, unknown> | undefined;
  let streamError: string | undefined;
  let errorBody = '';
  const read = (line: string): void => {
    const chunk = jsonObject(line);
    if (!chunk) return;
    if (typeof chunk.error === 'string') streamError = chunk.error;
    if (typeof chunk.response === 'string') text += chunk.response;
    if (chunk.done === true) done = chunk;
  };
  return {
    hasFinalRecord: true,
    push(stream, chunk) {
      if (stream === 'stdout') lines.push(chunk).forEach(read);
      else if (errorBody.length < 64 * 1024) errorBody += chunk;
    },
    finish(end: RunEnd): ParsedOutput {
      lines.end().forEach(read);
      if (end.kind === 'http_error') {
        const error = errorText(errorBody) || `HTTP ${end.status}`;
        return {
          final: false,
          failureClass:
            matchPatterns(error) ??
            httpStatusClass(end.status) ??
            (end.status >= 500 ? FAILURE_CLASSES.crash : FAILURE_CLASSES.badOutput),
          error: `HTTP ${end.status}: ${error}`.slice(0, 2000),
        };
      }
      const parsed: ParsedOutput = {
        final: done !== undefined,
        text,
        inputTokens: num(done?.prompt_eval_count),
        outputTokens: num(done?.eval_count),
        turns: done ? 1 : undefined,
      };
      if (streamError !== undefined) {
        parsed.failureClass = matchPatterns(streamError) ?? FAILURE_CLASSES.crash;
        parsed.error = streamError.slice(0, 2000);
      }
      return parsed;
    },
  };
}
