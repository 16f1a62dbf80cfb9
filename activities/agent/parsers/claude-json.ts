import { claudeWithoutResult, newClaudeContext, readClaudeMessage, readClaudeResult } from './claude-record';
import { jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

/** The result object is small; a stdout beyond this is not one, and is not kept whole. */
const MAX_JSON_CHARS = 16 * 1024 * 1024;

/**
 * `claude -p --output-format json`: one JSON object, the result message, printed at the end. Some
 * versions (and `--verbose`) print a JSON array of every message instead, the result last: both work.
 */
export function claudeJsonParser(): OutputParser {
  let stdout = '';
  return {
    hasFinalRecord: true,
    push(stream, text) {
      if (stream === 'stdout' && stdout.length < MAX_JSON_CHARS) stdout += text;
    },
    finish(): ParsedOutput {
      const ctx = newClaudeContext();
      let messages: unknown[] = [];
      try {
        const value: unknown = JSON.parse(stdout.trim());
        messages = Array.isArray(value) ? value : [value];
      } catch {
        // Not one JSON document: perhaps a message per line, perhaps a crash halfway.
        messages = stdout.split('\n').map(jsonObject).filter(Boolean);
      }
      let result: Record<string, unknown> | undefined;
      for (const message of messages) {
        if (typeof message !== 'object' || message === null || Array.isArray(message)) continue;
        const m = message as Record<string, unknown>;
        if (m.type === 'result' || (m.type === undefined && 'is_error' in m)) result = m;
        else readClaudeMessage(m, ctx);
      }
      return result ? readClaudeResult(result, ctx, Date.now()) : claudeWithoutResult(ctx);
    },
  };
}
