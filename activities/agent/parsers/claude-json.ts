import { claudeWithoutResult, newClaudeContext, readClaudeMessage, readClaudeResult } from './claude-record';
import { Tail, jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

/**
 * stdout kept: its end, where the result is. A longer output (the array form with `--verbose`, after a
 * long run) loses its first messages, never its result.
 */
const MAX_JSON_CHARS = 16 * 1024 * 1024;

/** Every message in `text`: one JSON document (an object, or the array form), else one per line. */
function messagesIn(text: string): unknown[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value : [value];
  } catch {
    // Not one JSON document: a message per line, a crash halfway, or an array whose start was not kept.
    return text.split('\n').map(jsonObject).filter(Boolean);
  }
}

/**
 * The object that ends `text` (the array form's last element), found from its end. Each try from a
 * "{" fails where the object begun there ends (or at once, inside a string), so the text is read about
 * as many times as its objects nest.
 */
function lastObject(text: string): Record<string, unknown> | undefined {
  const body = text.replace(/\s*\]$/, '');
  if (!body.endsWith('}')) return undefined;
  for (let at = body.lastIndexOf('{'); at !== -1; at = at > 0 ? body.lastIndexOf('{', at - 1) : -1) {
    const value = jsonObject(body.slice(at));
    if (value) return value;
  }
  return undefined;
}

const isResult = (m: Record<string, unknown>): boolean =>
  m.type === 'result' || (m.type === undefined && 'is_error' in m);

/**
 * `claude -p --output-format json`: one JSON object, the result message, printed at the end. Some
 * versions (and `--verbose`) print a JSON array of every message instead, the result last: both work.
 */
export function claudeJsonParser(): OutputParser {
  const stdout = new Tail(MAX_JSON_CHARS);
  return {
    hasFinalRecord: true,
    push(stream, text) {
      if (stream === 'stdout') stdout.push(text);
    },
    finish(): ParsedOutput {
      const text = stdout.toString().trim();
      const ctx = newClaudeContext();
      let result: Record<string, unknown> | undefined;
      for (const message of messagesIn(text)) {
        if (typeof message !== 'object' || message === null || Array.isArray(message)) continue;
        const m = message as Record<string, unknown>;
        if (isResult(m)) result = m;
        else readClaudeMessage(m, ctx);
      }
      if (!result) {
        const last = lastObject(text);
        if (last && isResult(last)) result = last;
      }
      return result ? readClaudeResult(result, ctx, Date.now()) : claudeWithoutResult(ctx);
    },
  };
}
