import { claudeWithoutResult, newClaudeContext, readClaudeMessage, readClaudeResult } from './claude-record';
import { LineSplitter, jsonObject } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

/**
 * `claude -p --output-format stream-json --verbose`: one JSON message per line (system init, assistant
 * and user turns, `rate_limit_event`s), ending with one `type: "result"` line.
 */
export function claudeStreamJsonParser(): OutputParser {
  const lines = new LineSplitter();
  const ctx = newClaudeContext();
  let result: Record<string, unknown> | undefined;
  const read = (line: string): void => {
    const message = jsonObject(line);
    if (!message) return;
    if (message.type === 'result') result = message;
    else readClaudeMessage(message, ctx);
  };
  return {
    hasFinalRecord: true,
    push(stream, text) {
      if (stream === 'stdout') lines.push(text).forEach(read);
    },
    finish(): ParsedOutput {
      lines.end().forEach(read);
      return result ? readClaudeResult(result, ctx, Date.now()) : claudeWithoutResult(ctx);
    },
  };
}
