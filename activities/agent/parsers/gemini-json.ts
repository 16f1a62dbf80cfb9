import { FAILURE_CLASSES } from '../../../workflows/definitions';
import { resetTimeIn } from './reset-time';
import { geminiErrorClass, geminiExitCodeClass } from './gemini-common';
import { Tail } from './line-splitter';
import type { OutputParser, ParsedOutput } from './types';

/**
 * Of stdout and of stderr, the end kept: where the report is, after whatever the CLI printed before it.
 * A longer output loses its start, never its report.
 */
const MAX_JSON_CHARS = 16 * 1024 * 1024;

/**
 * The JSON object that ends `text`, beginning at its first "{" or at one that starts a line: the CLI
 * may print warnings before it (and a kept end may begin partway through anything).
 */
function lastJsonObject(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  for (let at = trimmed.indexOf('{'); at !== -1; at = trimmed.indexOf('\n{', at + 1)) {
    const start = trimmed[at] === '{' ? at : at + 1;
    try {
      const value: unknown = JSON.parse(trimmed.slice(start));
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // not from here; try the next object that starts a line
    }
  }
  return undefined;
}

const sum = (values: unknown[]): number | undefined => {
  const numbers = values.filter((v): v is number => typeof v === 'number');
  return numbers.length > 0 ? numbers.reduce((a, b) => a + b, 0) : undefined;
};

/**
 * One model's entry in `stats.models`. Its `tokens` split what Gemini bills: `prompt` (the `cached`
 * part of it at the cached rate) and `tool` (tool-use prompts) at the input rate, `candidates` and
 * `thoughts` (thinking) at the output rate; `total` is their sum.
 */
interface ModelStats {
  tokens?: Record<string, unknown>;
  api?: Record<string, unknown>;
}

/**
 * `gemini --output-format json`: one object at the end, `{session_id, response, stats, error}`; stats
 * hold tokens per model. Fatal errors print an object with `error` on stderr and exit with a code that
 * names the kind (see gemini-common.ts).
 */
export function geminiJsonParser(): OutputParser {
  const kept = { stdout: new Tail(MAX_JSON_CHARS), stderr: new Tail(MAX_JSON_CHARS) };
  return {
    hasFinalRecord: true,
    exitCodeClass: geminiExitCodeClass,
    push(stream, text) {
      kept[stream].push(text);
    },
    finish(): ParsedOutput {
      const out = lastJsonObject(kept.stdout.toString());
      const err = lastJsonObject(kept.stderr.toString());
      const report = out ?? err;
      if (!report) return { final: false };
      const models = (Object.values(((report.stats ?? {}) as { models?: object }).models ?? {}) as unknown[]).filter(
        (m): m is ModelStats => typeof m === 'object' && m !== null,
      );
      const parsed: ParsedOutput = {
        final: 'response' in report || 'error' in report,
        text: typeof report.response === 'string' ? report.response : undefined,
        sessionId: typeof report.session_id === 'string' ? report.session_id : undefined,
        inputTokens: sum(models.flatMap((m) => [m.tokens?.prompt, m.tokens?.tool])),
        cachedInputTokens: sum(models.map((m) => m.tokens?.cached)),
        outputTokens: sum(models.flatMap((m) => [m.tokens?.candidates, m.tokens?.thoughts])),
        turns: sum(models.map((m) => m.api?.totalRequests)),
      };
      // A report on stdout is the run's own: an error object at the end of stderr (an MCP server's, say)
      // does not overrule its success. Without one, Gemini CLI reports its failure on stderr.
      const error = (out ? out.error : err?.error) as Record<string, unknown> | undefined;
      if (error && typeof error === 'object') {
        parsed.failureClass = geminiErrorClass(error);
        parsed.error = String(error.message ?? error.type ?? 'error').slice(0, 2000);
        if (parsed.failureClass === FAILURE_CLASSES.rateLimited) parsed.resetAt = resetTimeIn(parsed.error, Date.now());
      } else if (parsed.final && parsed.text === undefined) {
        parsed.failureClass = FAILURE_CLASSES.badOutput;
        parsed.error = 'the report has no response';
      }
      return parsed;
    },
  };
}
