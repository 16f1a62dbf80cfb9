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
      String.raw`rate[ _-]?limit|${statusNamed('429')}|too many requests|quota exceeded|exceeded your current quota|resource[_ ]exhausted|usage limit|hit your (\w+ )?limit`,
      'i',
    ),
  ],
  [
    // A server that failed or could not be reached this time: 5xx but 501 and 505 (the server does not
    // do what was asked, which no retry changes), timeouts and dropped connections.
    FAILURE_CLASSES.overloaded,
    new RegExp(
      String.raw`overloaded|${statusNamed(String.raw`5(?!0[15])\d\d`)}|service unavailable|\bunavailable\b|bad gateway|gateway time-?out|server(s)? (are |is )?(down|busy)|server had an error|internal[ _]?server[ _]?error|request timed out|connection error|econnreset|etimedout|socket hang up|stream disconnected`,
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

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: HOUR_MS, d: DAY_MS };
/** One amount and its unit: "20s", "0.5 seconds", "7m", "2 days". */
const AMOUNT = String.raw`(\d+(?:\.\d+)?)\s*(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?![a-z])`;
/** "try again in 7m12s", "retry after 2 minutes", "try again in 2 days 3 hours 5 minutes". */
const RESET_IN = new RegExp(
  String.raw`(?:try again|retry(?:ing)?|resets?)\s+(?:in|after)\s+((?:${AMOUNT}[\s,]*(?:and\s+)?)+)`,
  'i',
);
/** "resets 4pm (UTC)", "resets 10:30pm (Europe/Berlin)", "try again at 12:16 PM": a time of day, in a zone. */
const RESET_AT = /(?:resets?(?:\s+at)?|try again at)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?(?:\s*\(([^)\s]+)\))?/i;

/** How far `zone`'s clock (the worker's own when unset) is ahead of UTC at `at`; undefined for an unknown zone. */
function zoneOffsetMs(zone: string | undefined, at: number): number | undefined {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(at);
  } catch {
    return undefined;
  }
  const part = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return wall - (at - (at % 1000));
}

/** The next time the clock of `zone` shows `hour`:`minute` after `now`. */
function nextClockTime(hour: number, minute: number, zone: string | undefined, now: number): number | undefined {
  const offset = zoneOffsetMs(zone, now);
  if (offset === undefined) return undefined;
  const wall = now + offset;
  const at = wall - (wall % DAY_MS) + hour * HOUR_MS + minute * 60_000 - offset;
  return at > now ? at : at + DAY_MS;
}

/**
 * A reset time the text names, as epoch ms from `now`: a delay ("try again in 30 seconds", "Please
 * retry in 41.2s", "try again in 2 days 3 hours") or a time of day ("resets 4pm (UTC)"; without a zone,
 * the worker's, which is the agent's too). Undefined when the text names none.
 */
export function resetTimeIn(text: string, now: number): number | undefined {
  const delay = RESET_IN.exec(text)?.[1];
  if (delay !== undefined) {
    let ms = 0;
    for (const [, amount, unit = ''] of delay.matchAll(new RegExp(AMOUNT, 'gi'))) {
      const u = unit.toLowerCase();
      ms += Number(amount) * (UNIT_MS[u.startsWith('ms') || u.startsWith('milli') ? 'ms' : u.charAt(0)] ?? 1000);
    }
    return now + Math.round(ms);
  }
  const clock = RESET_AT.exec(text);
  if (!clock) return undefined;
  const hour = Number(clock[1]);
  const minute = Number(clock[2] ?? 0);
  if (hour < 1 || hour > 12 || minute > 59) return undefined;
  return nextClockTime((hour % 12) + (clock[3]?.toLowerCase() === 'p' ? 12 : 0), minute, clock[4], now);
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
