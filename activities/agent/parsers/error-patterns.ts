import { FAILURE_CLASSES, type FailureClass } from '../../../workflows/definitions';

/**
 * What agent CLIs and their providers print when a call fails, by class, most specific first. Used on
 * error messages the output reports, and on stderr of runs that failed without saying why in their
 * output. Never on a run that succeeded: a prompt about "rate limits" must not fail its task.
 */
export const BUILT_IN_PATTERNS: readonly (readonly [FailureClass, RegExp])[] = [
  [
    FAILURE_CLASSES.contextOverflow,
    /prompt is too long|context[ _]?(window|length)|context_length_exceeded|maximum context length|exceeds the \S+ token limit|input token count .* exceeds|too many tokens|request too large for model/i,
  ],
  [
    FAILURE_CLASSES.auth,
    /invalid (x-)?api[ _-]?key|incorrect api key|api key not valid|authenticat|unauthori[sz]ed|\b401\b|\b403\b|please run \/login|oauth token (has expired|revoked)|credit balance is too low|permission_denied/i,
  ],
  [
    FAILURE_CLASSES.rateLimited,
    /rate[ _-]?limit|\b429\b|too many requests|quota exceeded|exceeded your current quota|resource[_ ]exhausted|usage limit|hit your (\w+ )?limit/i,
  ],
  [
    FAILURE_CLASSES.overloaded,
    /overloaded|\b529\b|\b503\b|\b502\b|service unavailable|\bunavailable\b|server(s)? (are |is )?(down|busy)|server had an error|internalservererror/i,
  ],
];

/** The first class whose pattern matches `text`, from `patterns`. */
export function matchPatterns(
  text: string,
  patterns: readonly (readonly [FailureClass, RegExp])[] = BUILT_IN_PATTERNS,
): FailureClass | undefined {
  if (text === '') return undefined;
  return patterns.find(([, pattern]) => pattern.test(text))?.[0];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A reset time named in words ("try again in 30 seconds", "Please retry in 41.2s", "retry after 2
 * minutes"), as epoch ms from `now`; undefined when the text names none.
 */
export function resetTimeIn(text: string, now: number): number | undefined {
  const m =
    /(?:try again|retry(?:ing)?|resets?)\s+(?:in|after)\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b/i.exec(
      text,
    );
  if (!m) return undefined;
  const unit = (m[2] as string).toLowerCase();
  const key = unit.startsWith('ms') || unit.startsWith('milli') ? 'ms' : (unit[0] as string);
  return now + Math.round(Number(m[1]) * (UNIT_MS[key] ?? 1000));
}

/** Classifies an HTTP status an API answered with; undefined for statuses that say nothing specific. */
export function httpStatusClass(status: number): FailureClass | undefined {
  if (status === 429) return FAILURE_CLASSES.rateLimited;
  if (status === 401 || status === 403) return FAILURE_CLASSES.auth;
  if (status === 502 || status === 503 || status === 504 || status === 529) return FAILURE_CLASSES.overloaded;
  return undefined;
}
