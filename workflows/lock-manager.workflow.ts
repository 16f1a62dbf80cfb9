import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { LockActivities } from '../activities';
import {
  LOCK_SIGNALS,
  LOCK_TABLE_QUERY,
  LOCK_TABLE_SIZE_QUERY,
  type LockManagerInput,
  type LockRelease,
  type LockRequest,
  type LockTable,
  type LockTableSize,
} from './definitions';
import { lockSetOverlapCheck } from './lock-globs';

export const acquireLocksSignal = defineSignal<[LockRequest]>(LOCK_SIGNALS.acquire);
export const releaseLocksSignal = defineSignal<[LockRelease]>(LOCK_SIGNALS.release);
export const locksGrantedSignal = defineSignal<[LockRelease]>(LOCK_SIGNALS.granted);
export const lockTableQuery = defineQuery<LockTable>(LOCK_TABLE_QUERY);
export const lockTableSizeQuery = defineQuery<LockTableSize>(LOCK_TABLE_SIZE_QUERY);

const DEFAULT_REAP_INTERVAL_SECONDS = 30;
const REAP_SCHEDULE_PATCH = 'lock-manager-reap-schedule';
const CHANGES_DURING_GRANT_PATCH = 'lock-manager-changes-during-grant';
const RELEASE_BEFORE_REQUEST_PATCH = 'lock-manager-release-before-request';
const REMEMBER_RELEASES_PATCH = 'lock-manager-remember-releases';
const IDLE_WITHOUT_TIMER_PATCH = 'lock-manager-idle-without-timer';
/**
 * How long a release is remembered. The request comes from an activity that may retry for minutes
 * while Temporal is away (and deliver it again after its release); an hour covers it many times over.
 */
const RELEASE_KEPT_MS = 60 * 60_000;
/** At most this many releases are remembered (the oldest go first), so the table carried over `continueAsNew` stays small. */
const RELEASES_KEPT = 2_000;

/** The UTF-8 length of `text`, or a little more (a character outside the BMP counts 6 bytes, not 4). */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    bytes += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
  }
  return bytes;
}

const lockActivities = proxyActivities<LockActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/**
 * The file locks of one repository (workflow id `locks:<repo>`), after Temporal's mutex pattern. A task
 * asks for all its globs at once (signal `acquireLocks`, sent with signal-with-start, so the first
 * request starts the manager); the manager grants a request, by signalling `locksGranted` to the
 * task's workflow, when its globs overlap neither a holder's nor an earlier waiter's. Requests are
 * served in arrival order, and a later request may only pass a waiting one it cannot conflict with, so
 * nobody is starved; holding nothing while waiting means no deadlock. Tasks release with
 * `releaseLocks` from a non-cancellable `finally`; holders and waiters whose workflow run ended
 * without releasing (terminated, timed out) are dropped every `reapIntervalSeconds`, however busy the
 * manager is, and a manager with an empty table sleeps until the next signal; a request whose release came first (its task was cancelled while sending it), or that
 * comes again after its release (its sending activity retried), is ignored.
 * Grants go to the
 * requesting run only, never to a later run of the same task. The table survives worker and server
 * restarts as workflow state and moves over `continueAsNew` when the history grows long.
 */
export async function lockManagerWorkflow(input: LockManagerInput): Promise<void> {
  // Asked before any signal is handled: the handlers below depend on it.
  const rememberEarlyReleases = patched(RELEASE_BEFORE_REQUEST_PATCH);
  // Runs from before remembered only releases that came before their request: a request delivered
  // again after its release (the sending activity retried, its first answer lost) was granted anew.
  const rememberEveryRelease = patched(REMEMBER_RELEASES_PATCH);
  const holders: LockRequest[] = [...(input.holders ?? [])];
  const waiters: LockRequest[] = [...(input.waiters ?? [])];
  /**
   * Releases by request id, with when they came: of requests not (yet) in the table, and with
   * `rememberEveryRelease` of every request. A task cancelled while its request is being sent releases
   * at once, and the request may still arrive after that, or arrive again (its sending activity
   * retried): it is then ignored, rather than granted to a task that will never release it.
   */
  const releases = new Map<string, number>(Object.entries(input.earlyReleases ?? {}));
  const reapMs = (input.reapIntervalSeconds ?? DEFAULT_REAP_INTERVAL_SECONDS) * 1000;
  let changes = 0;
  /**
   * The request that blocked each waiter when it was last looked at. While that one is still a holder
   * or an earlier waiter, it still blocks (a request's globs never change): the waiter is not compared
   * with every other again, which on a large table would take each pass, at every signal, past the
   * workflow task's time limit.
   */
  const blockedBy = new Map<string, string>();

  const known = (requestId: string) => [...holders, ...waiters].some((r) => r.requestId === requestId);
  const remove = (list: LockRequest[], requestId: string): boolean => {
    const at = list.findIndex((r) => r.requestId === requestId);
    if (at >= 0) list.splice(at, 1);
    blockedBy.delete(requestId);
    return at >= 0;
  };

  setHandler(acquireLocksSignal, (request) => {
    // A retried request (the sending activity ran twice) is the same request.
    if (known(request.requestId)) return;
    if (releases.has(request.requestId)) {
      log.info('ignoring a lock request its task has released', { requestId: request.requestId });
      return;
    }
    waiters.push({ ...request, since: Date.now() });
    changes += 1;
  });
  setHandler(releaseLocksSignal, ({ requestId }) => {
    const inTable = remove(holders, requestId) || remove(waiters, requestId);
    if (inTable) changes += 1;
    if (rememberEveryRelease) {
      // Kept in the order they came, so the expired ones, and the oldest beyond the limit, come first.
      releases.delete(requestId);
      releases.set(requestId, Date.now());
      for (const [id, at] of releases) {
        if (at >= Date.now() - RELEASE_KEPT_MS && releases.size <= RELEASES_KEPT) break;
        releases.delete(id);
      }
    } else if (!inTable && rememberEarlyReleases) {
      for (const [id, at] of releases) if (at < Date.now() - RELEASE_KEPT_MS) releases.delete(id);
      releases.set(requestId, Date.now());
    }
  });
  setHandler(lockTableQuery, () => ({ repo: input.repo, holders, waiters }));
  // The API asks before it accepts a task with locks here (src/api/locks/lock-table-room.ts).
  setHandler(lockTableSizeQuery, () => ({
    entries: holders.length + waiters.length,
    // Releases are left out: RELEASES_KEPT bounds them, and an idle repository keeps its last ones.
    tableBytes: [...holders, ...waiters].reduce((bytes, r) => bytes + utf8Bytes(JSON.stringify(r)) + 1, 0),
    carriedBytes: utf8Bytes(JSON.stringify({ holders, waiters, earlyReleases: Object.fromEntries(releases) })),
  }));

  /** Whether two lock sets can overlap; it reads each glob once for this run. */
  const overlaps = lockSetOverlapCheck();

  /** What blocks `request`: a holder or an earlier waiter its globs may overlap, the last one first. */
  const blockerOf = (request: LockRequest, passed: LockRequest[]): LockRequest | undefined => {
    const last = blockedBy.get(request.requestId);
    const isLast = (other: LockRequest): boolean => other.requestId === last;
    const conflicts = (other: LockRequest): boolean => overlaps(request.globs, other.globs);
    if (last !== undefined) {
      const still = holders.find(isLast) ?? passed.find(isLast);
      if (still !== undefined) return still;
    }
    return holders.find(conflicts) ?? passed.find(conflicts);
  };

  /** Grants, in arrival order, every waiter that conflicts with no holder and no waiter before it. */
  const grant = async (): Promise<void> => {
    const passed: LockRequest[] = [];
    for (const request of [...waiters]) {
      const blocker = blockerOf(request, passed);
      if (blocker !== undefined) {
        blockedBy.set(request.requestId, blocker.requestId);
        passed.push(request);
        continue;
      }
      blockedBy.delete(request.requestId);
      // Released (cancelled) while an earlier grant was being signalled: nothing to grant.
      if (!remove(waiters, request.requestId)) continue;
      holders.push({ ...request, since: Date.now() });
      try {
        await getExternalWorkflowHandle(request.workflowId, request.runId).signal(locksGrantedSignal, {
          requestId: request.requestId,
        });
      } catch (err) {
        // The task's workflow is gone: it will never release, so its grant is taken back at once.
        log.warn('lock holder vanished before its grant', { requestId: request.requestId, error: String(err) });
        remove(holders, request.requestId);
        changes += 1;
      }
    }
  };

  /** Drops holders and waiters whose run ended without releasing (terminated, timed out). */
  const reap = async (): Promise<void> => {
    const all = [...holders, ...waiters];
    if (all.length === 0) return;
    const ended = await lockActivities.endedWorkflows({
      runs: all.map((r) => ({ workflowId: r.workflowId, runId: r.runId })),
    });
    for (const request of all) {
      if (!ended.includes(`${request.workflowId}/${request.runId}`)) continue;
      log.info('dropping the lock request of a task that ended without releasing', { requestId: request.requestId });
      if (remove(holders, request.requestId) || remove(waiters, request.requestId)) changes += 1;
    }
  };

  // Runs from before the schedule reaped only after a quiet interval, so never in a busy repository.
  const reapOnSchedule = patched(REAP_SCHEDULE_PATCH);
  // Runs from before counted changes from the end of each grant: a request or release that came while
  // a grant was being signalled waited for the next change, or a reap.
  const countDuringGrant = patched(CHANGES_DURING_GRANT_PATCH);
  // Runs from before woke every reap interval with nothing to reap.
  const idleWithoutTimer = patched(IDLE_WITHOUT_TIMER_PATCH);
  // A run continued from another keeps its reap schedule: one that continues as new within each reap
  // interval (a busy repository) would otherwise never reap.
  let nextReap = input.nextReapAt ?? Date.now() + reapMs;
  for (;;) {
    const beforeGrant = changes;
    await grant();
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof lockManagerWorkflow>({
        ...input,
        holders,
        waiters,
        ...(releases.size > 0 && { earlyReleases: Object.fromEntries(releases) }),
        nextReapAt: nextReap,
      });
    }
    const seen = countDuringGrant ? beforeGrant : changes;
    if (!reapOnSchedule) {
      if (!(await condition(() => changes !== seen, reapMs))) await reap();
      continue;
    }
    if (idleWithoutTimer && holders.length + waiters.length === 0) {
      await condition(() => changes !== seen);
      nextReap = Date.now() + reapMs;
      continue;
    }
    await condition(() => changes !== seen, Math.max(1, nextReap - Date.now()));
    if (Date.now() >= nextReap) {
      await reap();
      nextReap = Date.now() + reapMs;
    }
  }
}
