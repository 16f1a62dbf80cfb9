import { FAILURE_CLASSES, type FailureClass } from '../../../workflows/definitions';
import { matchPatterns } from './error-patterns';
import { resetTimeIn } from './reset-time';
import { LineSplitter } from './line-splitter';
import type { OutputParser, OutputStream, ParsedOutput } from './types';

/**
 * `Tokens: 12k sent, 1.2k cache write, 9.8k cache hit, 138 received.` (aider prints one per LLM call).
 * `sent` is the call's whole input: litellm's `prompt_tokens` (which count the cache hits, and with some
 * litellm versions the cache writes too) plus the cache writes. So it is the input, or more than it by
 * the cache writes, never less; "cache write" and "cache hit" are parts of it.
 */
const TOKENS_LINE =
  /^Tokens:\s+([\d.]+k?)\s+sent(?:,\s+([\d.]+k?)\s+cache write)?(?:,\s+([\d.]+k?)\s+cache (?:hit|read))?,\s+([\d.]+k?)\s+received/i;
/** `Cost: $0.0084 message, $0.0251 session.` follows it when the model has a price. */
const COST = /Cost:\s+\$([\d.]+)\s+message,\s+\$([\d.]+)\s+session/i;
/**
 * Lines where aider reports a failed call: litellm's exception, and aider's own explanation. One word
 * character before `Error` finds the same lines as a whole word would, in linear time on a line that is
 * one long word (`\w+Error` backtracks: seconds on an 80,000-character line).
 */
const ERROR_LINE =
  /litellm\.\w+|\w(Error|Exception)\b|API provider|exceeds the \S+ token limit|context window|Retrying in|Unable to|Invalid API key/i;

/**
 * What aider prints only when a model call failed (or is about to, past the model's context): litellm's
 * exception, its explanation of one, its context warnings. Other lines that name an error may be the
 * work's: a linter's or a test's output it shows.
 */
const CALL_FAILED = /^litellm\.\w+|^The API provider|exceeds the \S+ token limit|exhausted context window/i;

/**
 * Aider's own backoff between its retries of a failed call (0.2 s, doubling, until it gives up past
 * 60 s): when it waits, not when the provider's limit resets.
 */
const AIDER_RETRY = /^Retrying in [\d.]+ seconds\.\.\.$/i;

/** Aider rounds to thousands above 1000 ("2.1k", "15k"): the count is approximate there. */
const tokens = (text: string | undefined): number =>
  text === undefined
    ? 0
    : text.toLowerCase().endsWith('k')
      ? Math.round(Number(text.slice(0, -1)) * 1000)
      : Number(text);

/** Aider's own classes, by litellm exception name, before the built-in patterns. */
const AIDER_ERRORS: readonly (readonly [FailureClass, RegExp])[] = [
  [FAILURE_CLASSES.contextOverflow, /ContextWindowExceeded|exceeds the \S+ token limit/i],
  [FAILURE_CLASSES.auth, /AuthenticationError|PermissionDeniedError|not able to authenticate/i],
  [FAILURE_CLASSES.rateLimited, /RateLimitError|rate limited you/i],
  [
    FAILURE_CLASSES.overloaded,
    /InternalServerError|ServiceUnavailableError|APIConnectionError|Timeout|down or overloaded/i,
  ],
];

/** The class aider's error lines name: its own (by litellm exception name), then the built-in patterns. */
const knownClass = (said: string): FailureClass | undefined => matchPatterns(said, AIDER_ERRORS) ?? matchPatterns(said);

/**
 * Aider (`--message … --no-pretty`): plain text, and it exits 0 even when every API call failed. A run
 * succeeded when aider printed its "Tokens: … received." usage line (with "Cost: …" when the model has a
 * price), one per call, unless a later call failed: aider makes more calls after the first (to fix
 * edits that did not apply, or what its linter found), and one that failed after the last usage line
 * left its work undone. So the run is judged by the errors after the last usage line when they report
 * a failed call of a known class (a rate limit, say); without any usage line, by all its errors.
 *
 * Aider prints through Rich, which wraps lines at the terminal's width, 80 columns without a terminal
 * (unless `COLUMNS` says otherwise): a usage line with its cost is longer than that, and its end
 * ("$0.0456 session.") comes on the next line. A usage line without its whole cost is read with the next
 * line of its stream; so is one whose cost comes on a line of its own (aider's form when the call both
 * wrote and read its prompt cache).
 */
export function aiderTextParser(): OutputParser {
  // One splitter per stream: a stderr chunk arriving mid-line must not split a stdout line (its usage line).
  const lines = { stdout: new LineSplitter(), stderr: new LineSplitter() };
  const errors: string[] = [];
  let usageLines = 0;
  let inputTokens = 0;
  let cachedInputTokens = 0;
  let outputTokens = 0;
  let costUsd: number | undefined;
  /** Per stream, a usage line whose cost did not end on it. */
  const costless: Partial<Record<OutputStream, string>> = {};
  const read = (stream: OutputStream, line: string): void => {
    const before = costless[stream];
    costless[stream] = undefined;
    const usage = TOKENS_LINE.exec(line);
    if (usage) {
      usageLines += 1;
      // The errors before it were those of calls retried until this one completed.
      errors.length = 0;
      inputTokens += tokens(usage[1]);
      cachedInputTokens += tokens(usage[3]);
      outputTokens += tokens(usage[4]);
      const cost = COST.exec(line);
      if (cost) costUsd = Number(cost[2]);
      else costless[stream] = line.trim();
      return;
    }
    const cost = COST.exec(before === undefined ? line : `${before} ${line.trim()}`);
    if (cost) costUsd = Number(cost[2]);
    else if (ERROR_LINE.test(line) && errors.length < 50) errors.push(line.trim());
  };
  return {
    // Its usage line is its final record: exit 0 without one is judged by the parser (bad_output).
    hasFinalRecord: true,
    push(stream, text) {
      for (const line of lines[stream].push(text)) read(stream, line);
    },
    finish(end): ParsedOutput {
      for (const stream of ['stdout', 'stderr'] as const) for (const line of lines[stream].end()) read(stream, line);
      const said = errors.join('\n');
      const failure = (
        failureClass: FailureClass,
        lines = errors,
      ): Pick<ParsedOutput, 'failureClass' | 'error' | 'resetAt'> => ({
        failureClass,
        error: lines.join('\n').slice(-2000),
        // From its error lines only (the rest of its output is the model's answer, which may quote
        // anything), and only the provider's words: not aider's own "Retrying in 0.2 seconds...".
        resetAt:
          failureClass === FAILURE_CLASSES.rateLimited
            ? resetTimeIn(lines.filter((line) => !AIDER_RETRY.test(line)).join('\n'), Date.now())
            : undefined,
      });
      if (usageLines > 0) {
        const usage = { final: true, inputTokens, cachedInputTokens, outputTokens, costUsd, turns: usageLines };
        // Judged by the failed call's own lines: after the last call, its linter's or tests' errors
        // ("TimeoutError", "PermissionError") may be among the error lines too.
        const failedCall = errors.filter((line) => CALL_FAILED.test(line));
        const laterFailure = failedCall.length > 0 ? knownClass(failedCall.join('\n')) : undefined;
        return laterFailure === undefined ? usage : { ...usage, ...failure(laterFailure, failedCall) };
      }
      if (said === '') {
        // A non-zero exit speaks for itself; an exit 0 without any completed call is no result.
        if (end.kind !== 'exited' || end.exitCode !== 0) return { final: false };
        return {
          final: false,
          failureClass: FAILURE_CLASSES.badOutput,
          error: 'aider printed no usage line: no model call completed',
        };
      }
      return { final: false, ...failure(knownClass(said) ?? FAILURE_CLASSES.badOutput) };
    },
  };
}
