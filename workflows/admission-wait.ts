import type { AdmissionWait } from './definitions';

/**
 * Waits for admission never sleep longer than this between two looks, however far `until` is. What
 * lifts a wait early wakes the task instead (a budget raised, a slot of a limited agent freed: the
 * wake signal), so the looks are a safety net, and few: a task held back for a day adds about 300
 * rounds to its history.
 */
const MAX_WAIT_RECHECK_MS = 5 * 60_000;
/**
 * A wait that has gone on for this many looks (a day and more; hours when a breaker keeps reopening) is
 * looked at every hour at most, and every five minutes at least, however soon a wait says it lifts:
 * each look adds about a dozen events to the task's history, and Temporal ends a workflow whose
 * history reaches 51,200. Every five minutes that limit would come after about sixteen days of waiting
 * (a breaker whose probes keep failing, every 30-60 s, would reach it in two or three); hourly, after
 * months.
 */
const LONG_WAIT_ROUNDS = 300;
const LONG_WAIT_RECHECK_MS = 60 * 60_000;
/** Nor shorter, so a wait that is due already does not spin. */
const MIN_WAIT_RECHECK_MS = 50;
/**
 * A half-open breaker (its probe runs) whose probe succeeds wakes the tasks waiting for it; a task that
 * wake misses (or a probe whose worker died) is looked at this often at least.
 */
const HALF_OPEN_WAIT_RECHECK_MS = 30_000;

/**
 * Whether a wake may lift `wait` before it lifts by itself: one without `until` (a slot, the task's own
 * budget, a half-open breaker) only a wake lifts; the daily budget, which lifts at midnight UTC, is
 * lifted earlier by a raise, and an open breaker, which lifts at the end of its cooldown, by a reset.
 * The start window, which moves on within a minute, is left to its `until` (a worker that hands the
 * attempt back is asked again at once anyway).
 */
export const wokenEarly = (wait: AdmissionWait): boolean =>
  wait.until === null || wait.kind === 'daily_budget' || wait.kind === 'breaker_open';

/**
 * When a task held back asks for admission again: at the earliest moment a wait may lift by itself
 * (breaker cooldown, start window), else after the recheck interval, growing by half per `round` so a
 * task held back for hours keeps a small history (to five minutes; after LONG_WAIT_ROUNDS, from five
 * minutes to an hour). `overdue`: whether the earliest wait was due already
 * (its `until` passed). `until` is by the database's clock, which may run behind the workflow's; so
 * after `overdueRounds` such answers in a row the task looks again after 50 ms, then 100, 200… rather
 * than every 50 ms for as long as the clocks differ.
 *
 * `stored`: the wait the task's reason was stored as after this answer, if it was. Wakes find a task
 * by its stored reason, so one sent between the answer and the store (a slot freed, a budget raised,
 * a breaker closed) missed it: for a wait that a wake may lift (`wokenEarly`) the task looks again at
 * once, which sees what such a wake would have told; from then on the wakes find it.
 */
export function nextLook(
  waits: AdmissionWait[],
  recheckMs: number,
  round: number,
  overdueRounds: number,
  now: number,
  stored?: AdmissionWait,
): { delayMs: number; overdue: boolean } {
  const halfOpen = waits.some((w) => w.kind === 'breaker_open' && w.until === null);
  const longest = round >= LONG_WAIT_ROUNDS ? LONG_WAIT_RECHECK_MS : MAX_WAIT_RECHECK_MS;
  const polling = Math.min(recheckMs * 1.5 ** round, halfOpen ? HALF_OPEN_WAIT_RECHECK_MS : longest);
  const dueIn = Math.min(...waits.map((w) => (w.until === null ? polling : w.until - now)));
  const overdue = dueIn <= 0;
  if (stored && wokenEarly(stored)) return { delayMs: MIN_WAIT_RECHECK_MS, overdue };
  // A worker that drains, or had no free slot, answers at once and wants the attempt asked again at
  // once, elsewhere, however long the task has waited: it is not a look at a wait.
  const handedBack = waits.some((w) => w.kind === 'worker_draining' || w.kind === 'worker_busy');
  const floor =
    round >= LONG_WAIT_ROUNDS && !handedBack
      ? MAX_WAIT_RECHECK_MS
      : overdue
        ? Math.min(MIN_WAIT_RECHECK_MS * 2 ** overdueRounds, polling)
        : MIN_WAIT_RECHECK_MS;
  return { delayMs: Math.min(Math.max(dueIn, floor), longest), overdue };
}
