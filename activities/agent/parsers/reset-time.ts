/**
 * When an agent's limit resets, read from the words of its error: a delay or a time of day. Used when
 * the output gives no reset time of its own.
 */
import { LONGEST_RESET_MS } from '../../../src/gate/breaker';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS };
/** One amount and its unit: "20s", "0.5 seconds", "7m", "2 days". */
const AMOUNT = String.raw`(\d+(?:\.\d+)?)\s*(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?![a-z])`;
/** "try again in 7m12s", "retry after 2 minutes", "try again in 2 days 3 hours 5 minutes". */
const RESET_IN = new RegExp(
  String.raw`(?:try again|retry(?:ing)?|resets?)\s+(?:in|after)\s+((?:${AMOUNT}[\s,]*(?:and\s+)?)+)`,
  'i',
);
/** "resets 4pm (UTC)", "resets 10:30pm (Europe/Berlin)", "try again at 12:16 PM": a time of day, in a zone. */
const RESET_AT = /(?:resets?(?:\s+at)?|try again at)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?(?:\s*\(([^)\s]+)\))?/i;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/**
 * "resets Oct 9, 10am", "try again at Sep 26th, 2026 3:05 PM", "resets Oct 9 at 10am (UTC)": a day and
 * a time of day, in a zone; without a year, the next such day.
 */
const RESET_ON = new RegExp(
  String.raw`(?:resets?|try again)(?:\s+(?:at|on))?\s+(${MONTHS.join('|')})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s*(?:(\d{4}),?\s*)?(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?(?:\s*\(([^)\s]+)\))?`,
  'i',
);
/** "Claude AI usage limit reached|1753441200": the reset as epoch seconds after a bar, as Claude Code prints it. */
const RESET_EPOCH = /limit reached\|(\d{10})\b/i;

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

/**
 * The instant `zone`'s clock shows `wall` (a wall-clock time written as if it were UTC). Its offset is
 * taken at that instant, not now: across a change to or from summer time they differ by an hour.
 */
function instantOf(wall: number, zone: string | undefined): number {
  const guess = wall - (zoneOffsetMs(zone, wall) ?? 0);
  return wall - (zoneOffsetMs(zone, guess) ?? 0);
}

/**
 * A time of day said to the minute ("Try again at 3:05 PM", its seconds cut off) that is up to this
 * long past when it is read is the reset just coming, not the same time tomorrow: the limit lifts
 * within that minute, and the output may have taken a moment to be read.
 */
const JUST_PAST_MS = 5 * 60_000;

/**
 * `at`, a time said to the minute, unless it has passed: then, if only just, the end of its minute (at
 * most a minute from now; now, once that is past too).
 */
function unlessJustPast(at: number, now: number): number | undefined {
  if (at > now) return at;
  return at > now - JUST_PAST_MS ? Math.max(now, at + MINUTE_MS) : undefined;
}

/**
 * The next time the clock of `zone` shows `hour`:`minute` after `now`, or the one that just passed
 * (unlessJustPast): yesterday's, just before midnight, too.
 */
function nextClockTime(hour: number, minute: number, zone: string | undefined, now: number): number | undefined {
  const offset = zoneOffsetMs(zone, now);
  if (offset === undefined) return undefined;
  const today = now + offset - ((now + offset) % DAY_MS) + hour * HOUR_MS + minute * MINUTE_MS;
  for (const day of [today - DAY_MS, today, today + DAY_MS]) {
    const at = unlessJustPast(instantOf(day, zone), now);
    if (at !== undefined) return at;
  }
  return undefined;
}

/** Hours of a 12-hour clock ("12", "am") on a 24-hour one; undefined when they are no time. */
function clockHours(hour: number, minute: number, meridiem: string | undefined): number | undefined {
  if (hour < 1 || hour > 12 || minute > 59) return undefined;
  return (hour % 12) + (meridiem?.toLowerCase() === 'p' ? 12 : 0);
}

/**
 * The instant of a day and time of day in `zone`, in `year` or, without one, the next such day after
 * `now` (or the one that just passed: unlessJustPast).
 */
function nextDayTime(clock: RegExpExecArray, now: number): number | undefined {
  const [, monthName = '', day, year, hour, minute, meridiem, zone] = clock;
  const hours = clockHours(Number(hour), Number(minute ?? 0), meridiem);
  const month = MONTHS.indexOf(monthName.slice(0, 3).toLowerCase());
  if (hours === undefined || Number(day) < 1 || Number(day) > 31 || zoneOffsetMs(zone, now) === undefined)
    return undefined;
  const at = (y: number) =>
    unlessJustPast(instantOf(Date.UTC(y, month, Number(day), hours, Number(minute ?? 0)), zone), now);
  if (year !== undefined) return at(Number(year));
  const thisYear = new Date(now).getUTCFullYear();
  return [thisYear - 1, thisYear, thisYear + 1].map(at).find((t) => t !== undefined);
}

/**
 * A reset time the text names, as epoch ms from `now`: a delay ("try again in 30 seconds", "Please
 * retry in 41.2s", "try again in 2 days 3 hours"), a day and time ("resets Oct 9, 10am"), a time of day
 * ("resets 4pm (UTC)"; without a zone, the worker's, which the agent shares unless its profile leaves
 * `TZ` out of `envPassthrough`) or Claude Code's epoch
 * seconds ("usage limit reached|1753441200"). Undefined when the text names none, or a reset in the
 * past or more than a month away.
 */
export function resetTimeIn(text: string, now: number): number | undefined {
  return believableReset(namedResetTime(text, now), now);
}

/** A reset time (epoch ms) an agent gave, unless it is past or more than a month away (a misread unit, say). */
export function believableReset(at: number | undefined, now: number): number | undefined {
  return at !== undefined && at >= now && at <= now + LONGEST_RESET_MS ? at : undefined;
}

function namedResetTime(text: string, now: number): number | undefined {
  const delay = RESET_IN.exec(text)?.[1];
  if (delay !== undefined) {
    let ms = 0;
    for (const [, amount, unit = ''] of delay.matchAll(new RegExp(AMOUNT, 'gi'))) {
      const u = unit.toLowerCase();
      ms += Number(amount) * (UNIT_MS[u.startsWith('ms') || u.startsWith('milli') ? 'ms' : u.charAt(0)] ?? 1000);
    }
    return now + Math.round(ms);
  }
  const epoch = RESET_EPOCH.exec(text)?.[1];
  if (epoch !== undefined) return Number(epoch) * 1000;
  const day = RESET_ON.exec(text);
  if (day) return nextDayTime(day, now);
  const clock = RESET_AT.exec(text);
  if (!clock) return undefined;
  const minute = Number(clock[2] ?? 0);
  const hours = clockHours(Number(clock[1]), minute, clock[3]);
  return hours === undefined ? undefined : nextClockTime(hours, minute, clock[4], now);
}
