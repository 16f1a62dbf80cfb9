import { FAILURE_CLASSES, type FailureClass } from '../../../workflows/definitions';

/**
 * An HTTP status where a message names it as one ("status 429", "HTTP/1.1 503", "API Error: 500",
 * `"code": 401`). A bare number is not enough: stderr carries stack traces, full of line numbers
 * (`cli.js:401:17`).
 */
const statusNamed = (codes: string): string => String.raw`(?:status|http(?:/[\d.]+)?|error|code)\W{0,3}(?:${codes})\b`;

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
    new RegExp(
      String.raw`invalid (x-)?api[ _-]?key|incorrect api key|api key not valid|authenticat|unauthori[sz]ed|${statusNamed('401|403')}|\b403 forbidden|please run /login|oauth token (has expired|revoked)|credit balance is too low|permission_denied`,
      'i',
    ),
  ],
  [
    FAILURE_CLASSES.rateLimited,
    new RegExp(
      String.raw`rate[ _-]?limit|${statusNamed('429')}|too many requests|quota exceeded|exceeded your current quota|resource[_ ]exhausted|usage limit|hit your (\w+ )?limit|exhausted your (?:daily )?(?:quota|capacity)|quota will reset|resource has been exhausted|(?:\d+-hour|session|daily|weekly|opus|sonnet) limit reached`,
      'i',
    ),
  ],
  [
    // A server that failed or could not be reached this time: 5xx but 501 and 505 (the server does not
    // do what was asked, which no retry changes), timeouts and dropped connections.
    FAILURE_CLASSES.overloaded,
    new RegExp(
      String.raw`overloaded|${statusNamed(String.raw`5(?!0[15])\d\d`)}|service unavailable|\bunavailable\b|bad gateway|gateway time-?out|server(s)? (are |is )?(down|busy)|server had an error|internal[ _]?server[ _]?error|high demand|at capacity|no capacity available|request timed out|connection error|econnreset|etimedout|socket hang up|stream disconnected`,
      'i',
    ),
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

/**
 * Classifies an HTTP status an API answered with; undefined for statuses that say nothing specific.
 * A 5xx is the server failing this time (overloaded, retried), but 501 and 505: it cannot do the request.
 */
export function httpStatusClass(status: number): FailureClass | undefined {
  if (status === 429) return FAILURE_CLASSES.rateLimited;
  if (status === 401 || status === 403) return FAILURE_CLASSES.auth;
  if (status >= 500 && status <= 599 && status !== 501 && status !== 505) return FAILURE_CLASSES.overloaded;
  return undefined;
}
