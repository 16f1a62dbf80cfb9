import {
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyLocalActivities,
  setHandler,
  startChild,
  TerminatedFailure,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { PlanActivities } from '../activities';
import { agentTaskWorkflow } from './agent-task.workflow';
import {
  CANCEL_PLAN_TASK_SIGNAL,
  workflowIdForTask,
  type ClosedChildRecord,
  type PlanInput,
  type PlanOutput,
  type PlanSkip,
  type PlanTaskInput,
} from './definitions';
import { dependantsIndex } from './plan-graph';

/** Plan bookkeeping is idempotent (keyed by plan and task), so it may retry while the database is away. */
const bookkeeping = proxyLocalActivities<PlanActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

const MERGE_DEPENDENCIES_PATCH = 'plan-merge-dependencies';
/** Ready tasks looked at again before each start, failures and cancel requests first. */
const FRESH_READY_PATCH = 'plan-fresh-ready';
/** Every ready task that fits started in the same workflow task, not one round trip each. */
const START_TOGETHER_PATCH = 'plan-start-together';
/** A task whose workflow closed without recording its end (terminated, timed out) has it recorded by the plan. */
const RECORDS_CLOSED_CHILDREN_PATCH = 'plan-records-closed-children';
/** Plans from before FRESH_READY_PATCH act on cancel requests too (before, they started the task anyway). */
const BY_ROUNDS_HONOURS_CANCELS_PATCH = 'plan-by-rounds-honours-cancels';

/** How a child's run closed, when it closed without running its own end (so without recording it). */
function closedWithoutItsEnd(err: unknown): string | undefined {
  if (!(err instanceof ChildWorkflowFailure)) return undefined;
  if (err.cause instanceof TerminatedFailure) return 'ended in Temporal (terminated)';
  if (err.cause instanceof TimeoutFailure) return 'ended in Temporal (timed out)';
  return undefined;
}

const cancelPlanTaskSignal = defineSignal<[key: string]>(CANCEL_PLAN_TASK_SIGNAL);

type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/**
 * Runs a plan: each task starts as a child `agentTaskWorkflow` (id `task-<id>`, so the task is an
 * ordinary task everywhere else) once every task it depends on has succeeded, at most `maxParallel` at
 * once, the highest priority (1) first among the ready ones and submission order between equals. The
 * child start carries the task's priority, so Temporal's priority orders it against other plans' and
 * single tasks' work too. A task in a repository starts from the commits of the dependencies it builds
 * on, merged (see `withBase`). After a failure, `stop` skips every task not started yet and `continue` skips
 * the failed task's dependants only; running tasks always finish. Cancelling the plan cancels its
 * running tasks (Temporal propagates the cancel to the children and waits for them) and skips the rest.
 * A task cancelled on its own (signal `cancelPlanTask`) counts as failed: skipped if it had not
 * started, cancelled if it had. Skips and the plan's outcome are recorded in PostgreSQL as they happen,
 * and so is the end of a task whose workflow closed without recording it (terminated in the Temporal
 * Web UI, say): the API's sweep of closed runs cannot see a task that closed before its first write.
 */
export async function planWorkflow(input: PlanInput): Promise<PlanOutput> {
  const state = new Map<string, TaskState>(input.tasks.map((t) => [t.key, 'pending']));
  const position = new Map(input.tasks.map((t, i) => [t.key, i]));
  const byKey = new Map(input.tasks.map((t) => [t.key, t]));
  /** The commit each finished task with a repository left (its branch's head). */
  const commits = new Map<string, string>();
  let running = 0;
  let stopped = false;
  // Bumped whenever a child ends; the loop below waits on it instead of polling.
  let changes = 0;

  const keysIn = (s: TaskState): string[] => input.tasks.filter((t) => state.get(t.key) === s).map((t) => t.key);

  /**
   * Tasks are marked skipped once recorded: skips a cancel interrupts stay pending, and the cancel's
   * own skip records them.
   */
  const skip = async (keys: Iterable<string>, reason: string): Promise<void> => {
    const wanted = new Set(keys);
    const skips: PlanSkip[] = input.tasks
      .filter((t) => state.get(t.key) === 'pending' && wanted.has(t.key))
      .map((t) => ({ key: t.key, taskId: t.task.taskId, reason }));
    if (skips.length === 0) return;
    await bookkeeping.recordPlanSkips({ planId: input.planId, skips });
    for (const s of skips) state.set(s.key, 'skipped');
  };

  const ready = (): PlanTaskInput[] =>
    input.tasks
      .filter((t) => state.get(t.key) === 'pending' && t.dependsOn.every((d) => state.get(d) === 'succeeded'))
      .sort((a, b) => a.task.priority - b.task.priority || (position.get(a.key) ?? 0) - (position.get(b.key) ?? 0));

  // Histories from before merging replay with the first dependency's commit only.
  const mergeAll = patched(MERGE_DEPENDENCIES_PATCH);

  /**
   * A task with a repository and no `ref` of its own, depending on tasks that committed in the same
   * repository, builds on their work: it starts from the first one's commit (in `dependsOn` order)
   * with the others' merged in.
   */
  const withBase = (t: PlanTaskInput) => {
    const repo = t.task.repo;
    if (!repo || repo.ref !== undefined) return t.task;
    const from = t.dependsOn
      .filter((d) => commits.has(d) && byKey.get(d)?.task.repo?.path === repo.path)
      .map((d) => commits.get(d) as string);
    const [ref, ...merge] = from;
    if (ref === undefined) return t.task;
    return { ...t.task, repo: { ...repo, ref, ...(mergeAll && merge.length > 0 && { merge }) } };
  };

  /** Tasks whose workflow closed without recording its end, to record. */
  const closedUnrecorded: ClosedChildRecord[] = [];
  // Histories from before it left such a task's end to the API's sweep.
  const recordsClosedChildren = patched(RECORDS_CLOSED_CHILDREN_PATCH);
  /** Each entry leaves the list once written: a cancel that interrupts a write finds it still there. */
  const recordClosedChildren = async (): Promise<void> => {
    for (let closed = closedUnrecorded[0]; closed !== undefined; closed = closedUnrecorded[0]) {
      await bookkeeping.recordChildClosed(closed);
      closedUnrecorded.shift();
    }
  };

  const start = async (t: PlanTaskInput): Promise<void> => {
    // Running once started: a start refused (the plan was cancelled first) leaves the task pending.
    const child = await startChild(agentTaskWorkflow, {
      workflowId: workflowIdForTask(t.task.taskId),
      args: [withBase(t)],
      priority: { priorityKey: t.task.priority },
    });
    state.set(t.key, 'running');
    running += 1;
    void child.result().then(
      (output) => {
        if (output.commit) commits.set(t.key, output.commit.sha);
        settle(t, 'succeeded');
      },
      (err: unknown) => {
        const ended = closedWithoutItsEnd(err);
        if (recordsClosedChildren && ended !== undefined) {
          closedUnrecorded.push({ taskId: t.task.taskId, runId: child.firstExecutionRunId, ended });
        }
        settle(t, 'failed');
      },
    );
  };

  const settle = (t: PlanTaskInput, outcome: 'succeeded' | 'failed'): void => {
    state.set(t.key, outcome);
    running -= 1;
    changes += 1;
  };

  /** Keys whose cancel was asked for (`cancelPlanTask`) and not acted on yet. */
  const cancelRequests = new Set<string>();
  setHandler(cancelPlanTaskSignal, (key) => {
    if (!state.has(key)) return;
    cancelRequests.add(key);
    changes += 1;
  });

  /** A task not started yet is skipped, a running one cancelled; either counts as failed. */
  const honourCancelRequests = async (): Promise<void> => {
    for (const key of [...cancelRequests]) {
      cancelRequests.delete(key);
      const taskId = byKey.get(key)?.task.taskId as string;
      if (state.get(key) === 'pending') {
        await skip([key], 'cancelled');
        state.set(key, 'failed');
      } else if (state.get(key) === 'running') {
        // Its result then rejects, and settles it as failed.
        await getExternalWorkflowHandle(workflowIdForTask(taskId))
          .cancel()
          .catch(() => undefined); // it ended meanwhile
      }
    }
  };

  const dependantsOf = dependantsIndex(input.tasks);
  const failuresHandled = new Set<string>();
  /** `stop`: nothing more starts; `continue`: the failed tasks' dependants are skipped. */
  const reactToFailures = async (): Promise<void> => {
    const failed = keysIn('failed');
    if (failed.length === 0) return;
    if (input.onFailure === 'stop') {
      if (!stopped) log.info('plan stops after a failure', { planId: input.planId, failed });
      stopped = true;
      await skip(keysIn('pending'), `plan stopped: task "${failed[0]}" failed`);
    } else {
      // A failure's dependants are skipped once: asked again, the skip would find none pending.
      for (const key of failed) {
        if (failuresHandled.has(key)) continue;
        await skip(dependantsOf(key), `dependency "${key}" failed`);
        failuresHandled.add(key);
      }
    }
  };

  // Histories from before starting together started one task per round trip.
  const startTogether = patched(START_TOGETHER_PATCH);

  /**
   * Starts ready tasks while there is room: all that fit at once, chosen afresh after each round, so a
   * failure that came in meanwhile stops the starts.
   */
  const startReady = async (): Promise<void> => {
    for (;;) {
      if (running >= input.maxParallel) return;
      if (input.onFailure === 'stop' && keysIn('failed').length > 0) return;
      const next = ready().filter((t) => !cancelRequests.has(t.key));
      if (next.length === 0) return;
      if (!startTogether) {
        await start(next[0] as PlanTaskInput);
        continue;
      }
      // Every start settles before a refused one (the plan was cancelled) is thrown: none is left half counted.
      const starts = await Promise.allSettled(next.slice(0, input.maxParallel - running).map(start));
      const refused = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (refused) throw refused.reason;
    }
  };

  /** Runs until no task runs and none can start. */
  const runFresh = async (): Promise<void> => {
    for (;;) {
      const seen = changes;
      if (closedUnrecorded.length > 0) await recordClosedChildren();
      await honourCancelRequests();
      await reactToFailures();
      if (!stopped) await startReady();
      if (changes !== seen) continue; // a task ended or a cancel came meanwhile: look again first
      if (running === 0) return;
      await condition(() => changes !== seen);
    }
  };

  /**
   * Whether `runByRounds` acts on the cancel requests in. The patch is asked only once one is in, so
   * histories without any replay as they ran; one that came before the patch was ignored (its task
   * started all the same), and is again, and forgotten, so that such a history replays too.
   */
  const honoursCancelsByRounds = (): boolean => {
    if (cancelRequests.size === 0) return false;
    if (patched(BY_ROUNDS_HONOURS_CANCELS_PATCH)) return true;
    cancelRequests.clear();
    return false;
  };

  /**
   * As histories from before FRESH_READY_PATCH ran: the ready tasks chosen once per round; cancel
   * requests acted on since BY_ROUNDS_HONOURS_CANCELS_PATCH, as `runFresh` does.
   */
  const runByRounds = async (): Promise<void> => {
    for (;;) {
      if (!stopped) {
        for (const t of ready()) {
          if (running >= input.maxParallel) break;
          if (cancelRequests.has(t.key) && honoursCancelsByRounds()) continue;
          await start(t);
        }
      }
      // A cancel request that came in during the starts is acted on now, not after the next change.
      if (!honoursCancelsByRounds()) {
        if (running === 0) return;
        const seen = changes;
        await condition(() => changes !== seen);
      }
      if (honoursCancelsByRounds()) await honourCancelRequests();
      await reactToFailures();
    }
  };

  try {
    await (patched(FRESH_READY_PATCH) ? runFresh() : runByRounds());
    // Pending tasks left now wait on skipped ones (a failure in `continue` mode reaches them transitively);
    // none can be left otherwise, since a valid plan has no cycle.
    await skip(keysIn('pending'), 'a dependency did not succeed');
    const failed = keysIn('failed');
    const status = failed.length > 0 ? 'failed' : 'succeeded';
    // Once this write is under way the plan has ended: a cancel arriving meanwhile must not make Temporal
    // say cancelled while PostgreSQL says otherwise (the cancel's own write would find it ended).
    await CancellationScope.nonCancellable(() => bookkeeping.recordPlanOutcome({ planId: input.planId, status }));
    return { status, succeeded: keysIn('succeeded'), failed, skipped: keysIn('skipped') };
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // The cancelled scope can schedule nothing: skip, wait for the children's own cancellation (each
    // records its outcome and kills its agent) and record the plan's, outside it.
    const recorded = await CancellationScope.nonCancellable(async () => {
      await skip(keysIn('pending'), 'plan cancelled');
      await condition(() => running === 0);
      if (closedUnrecorded.length > 0) await recordClosedChildren();
      return bookkeeping.recordPlanOutcome({ planId: input.planId, status: 'cancelled' });
    });
    // The plan had ended before the cancel came in: its outcome was written in a workflow task that was
    // then lost (its local activity ran, its result was not recorded). That end stands, here too.
    // (Histories from before the answer carry none: they end cancelled as before.)
    if (recorded === 'succeeded' || recorded === 'failed') {
      return { status: recorded, succeeded: keysIn('succeeded'), failed: keysIn('failed'), skipped: keysIn('skipped') };
    }
    throw err;
  }
}
