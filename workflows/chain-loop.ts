import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  setHandler,
  defineSignal,
  sleep,
} from '@temporalio/workflow';
import type { AgentActivities, BookkeepingActivities } from '../activities';
import { nextLook, wokenEarly } from './admission-wait';
import { decideAfterFailure } from './attempt-policy';
import { classifyAttemptError, type ClassifiedFailure } from './attempt-failure';
import {
  FAILURE_CLASSES,
  WAKE_SIGNAL,
  type AdmissionWait,
  type AgentTaskInput,
  type AgentTaskOutput,
  type FailureClass,
  type RecordedOutcome,
  type RunAgentOutput,
} from './definitions';

const wakeSignal = defineSignal(WAKE_SIGNAL);

export interface ChainLoopOptions {
  /**
   * A wake that arrives while the task asks for admission (a slot freed just after it was refused) is
   * kept, so the task asks again at once. Histories from before (patch wake-kept-across-asks) dropped it.
   */
  keepWake: boolean;
  /**
   * A cancel that meets a run whose end PostgreSQL holds already (its failure being written, or a
   * success its lost worker wrote, or closed with its attempt for the workflow to record) ends the
   * workflow as that end, so Temporal and PostgreSQL agree. Histories from before (patch
   * cancel-follows-recorded-end) ended cancelled whatever was recorded.
   */
  followRecordedEnd: boolean;
}

type Step = { kind: 'succeeded'; result: RunAgentOutput } | { kind: 'failed'; failure: ClassifiedFailure };

/** The wait a client is shown: what holds the task back, rather than the open breakers it skipped. */
const shownWait = (waits: AdmissionWait[]): AdmissionWait =>
  waits.find((w) => w.kind !== 'breaker_open') ??
  [...waits].sort((a, b) => (a.until ?? Infinity) - (b.until ?? Infinity))[0] ??
  (waits[0] as AdmissionWait);

/**
 * The attempt loop with fallback chains. Each attempt asks the agent worker for admission first; an
 * agent whose breaker is open is skipped for the next one of the chain, and when every remaining
 * agent is held back (open, at its limits, over budget) the task shows `queued` with the reason and
 * waits on a durable timer (or the wake signal) before asking again. After a failure the class's
 * policy retries the agent, moves to the next one, or fails the task.
 */
export async function chainLoop(
  input: AgentTaskInput,
  agents: AgentActivities,
  bookkeeping: BookkeepingActivities,
  opts: ChainLoopOptions,
): Promise<AgentTaskOutput> {
  const chain = input.agents && input.agents.length > 0 ? input.agents : [input.agent];
  const recheckMs = (input.waitRecheckSeconds ?? 5) * 1000;
  let woken = false;
  setHandler(wakeSignal, () => {
    woken = true;
  });

  let attempt = 0;
  let hop = 0;
  let hopAttempts = 0;
  let classFailures: Partial<Record<FailureClass, number>> = {};
  let waitRound = 0;
  /** Rounds in a row whose wait was due already when the answer came (see `nextLook`). */
  let overdueRounds = 0;
  let shown: string | undefined;
  /** The failure the task is ending with, while its terminal write is under way. */
  let ending: ClassifiedFailure | undefined;
  const moveTo = (next: number): void => {
    hop = next;
    hopAttempts = 0;
    classFailures = {};
  };

  /** The task's output for a success PostgreSQL holds (its output is there, with the attempt). */
  const recordedSuccess = (recorded: RecordedOutcome): AgentTaskOutput => ({
    status: 'succeeded',
    attempts: recorded.attempt,
    exitCode: recorded.exitCode ?? 0,
    outputTail: '',
    agent: recorded.agent ?? (chain[hop] as string),
  });

  /**
   * Fails the task, unless PostgreSQL holds a success of this run already: a worker that wrote its
   * attempt's success and died (or lost Temporal) before answering, whose attempt then counted as lost.
   * The task succeeded then, here too, with that attempt; a success left to the workflow (a task with a
   * repository) is then committed and recorded by it, as any success. (Histories from before the answer
   * carry none, or none for a success left to the workflow: they fail as before. A replay reads the
   * answer from its history, so what the request asks changes nothing there.)
   */
  const failTask = async (failure: ClassifiedFailure, why: string): Promise<AgentTaskOutput> => {
    ending = failure;
    const recorded = await bookkeeping.recordTaskOutcome({
      taskId: input.taskId,
      status: 'failed',
      attempt,
      error: { class: failure.failureClass, message: failure.message },
      unlessAttemptSucceeded: true,
    });
    if (recorded?.status === 'succeeded') {
      log.info('the task had succeeded before its attempt was taken for lost', { taskId: input.taskId });
      return recordedSuccess(recorded);
    }
    throw ApplicationFailure.nonRetryable(
      `task failed after ${attempt} attempt(s) (${why}): ${failure.message}`,
      failure.failureClass,
    );
  };

  /** Runs one attempt on the first admitted agent from `hop` on, or returns the waits of all of them. */
  const tryChain = async (): Promise<Step | AdmissionWait[]> => {
    const waits: AdmissionWait[] = [];
    for (let candidate = hop; candidate < chain.length; candidate++) {
      const agent = chain[candidate] as string;
      const number = attempt + 1;
      try {
        const result = await agents.runAgent({
          taskId: input.taskId,
          attempt: number,
          agent,
          // The task's model is the head agent's; fallbacks run with their own profile's model.
          model: candidate === 0 ? input.model : undefined,
          workdir: input.workdir,
          timeoutSeconds: input.timeoutSeconds,
          gated: true,
          // Activity input is not compared on replay: running histories take it without a patch.
          moreInChain: candidate + 1 < chain.length,
        });
        if (result.waiting) {
          waits.push(result.waiting);
          // An open breaker skips its agent; limits and budgets make the task wait for this one.
          if (result.waiting.kind === 'breaker_open') continue;
          return waits;
        }
        attempt = number;
        if (candidate !== hop) moveTo(candidate);
        return { kind: 'succeeded', result };
      } catch (err) {
        if (isCancellation(err)) throw err;
        attempt = number;
        if (candidate !== hop) moveTo(candidate);
        return { kind: 'failed', failure: classifyAttemptError(err) };
      }
    }
    return waits;
  };

  try {
    for (;;) {
      if (opts.keepWake) woken = false;
      const step = await tryChain();
      if (Array.isArray(step)) {
        const wait = shownWait(step);
        const key = `${wait.kind}:${wait.agent}`;
        const stored = key !== shown ? wait : undefined;
        if (stored) {
          await bookkeeping.recordWaiting({ taskId: input.taskId, wait });
          shown = key;
        }
        // Only the length of the timer below changes with `stored` (a look at once, or later): a
        // timer's length is not compared on replay, so that needs no patch.
        const look = nextLook(step, recheckMs, waitRound, overdueRounds, Date.now(), stored);
        // The look again at once after a newly stored wait that a wake may lift is no round: the first
        // recheck after it comes after the recheck interval itself.
        if (!(stored && wokenEarly(stored))) waitRound += 1;
        overdueRounds = look.overdue ? overdueRounds + 1 : 0;
        if (!opts.keepWake) woken = false;
        await condition(() => woken, look.delayMs);
        continue;
      }
      waitRound = 0;
      overdueRounds = 0;
      shown = undefined;
      const agent = chain[hop] as string;
      if (step.kind === 'succeeded') {
        const r = step.result;
        return {
          status: 'succeeded',
          // An earlier attempt's success, found again by this one (which ran nothing), is that attempt's.
          // Histories from before carry no such answer: there it counts as this attempt's, as it did.
          attempts: r.attempt ?? attempt,
          exitCode: r.exitCode,
          outputTail: r.outputTail,
          agent: r.agent ?? agent,
          ...(r.costUsd != null && { costUsd: r.costUsd }),
          ...(r.inputTokens != null && { inputTokens: r.inputTokens }),
          ...(r.outputTokens != null && { outputTokens: r.outputTokens }),
        };
      }
      const failure = step.failure;
      hopAttempts += 1;
      classFailures[failure.failureClass] = (classFailures[failure.failureClass] ?? 0) + 1;
      log.warn('agent attempt failed', { taskId: input.taskId, attempt, agent, failureClass: failure.failureClass });
      // Closes the attempt when its worker could not (it died, or failed before starting the agent);
      // an attempt the worker already closed is left as it is.
      await bookkeeping.recordAttemptFailure({
        taskId: input.taskId,
        attempt,
        agent,
        model: hop === 0 ? input.model : undefined,
        failureClass: failure.failureClass,
        message: failure.message,
      });
      const decision = decideAfterFailure(
        failure,
        { attempts: hopAttempts, classFailures: classFailures[failure.failureClass] ?? 0 },
        {
          maxAttempts: input.maxAttempts,
          backoffSeconds: input.backoffSeconds ?? 1,
          maxBackoffSeconds: input.maxBackoffSeconds ?? 60,
          now: Date.now(),
        },
      );
      if (decision.action === 'fail') return await failTask(failure, decision.reason);
      if (decision.action === 'next') {
        if (hop + 1 >= chain.length) {
          return await failTask(
            failure,
            chain.length > 1 ? `fallback chain exhausted; ${decision.reason}` : decision.reason,
          );
        }
        log.info('moving to the next agent', { taskId: input.taskId, from: agent, to: chain[hop + 1] });
        moveTo(hop + 1);
        continue;
      }
      if (decision.action === 'retry') await sleep(decision.delayMs);
    }
  } catch (err) {
    if (isCancellation(err)) {
      // The cancelled scope cannot schedule activities; record the outcome outside it.
      const recorded = await CancellationScope.nonCancellable(() =>
        bookkeeping.recordTaskOutcome({
          taskId: input.taskId,
          status: 'cancelled',
          attempt,
          error: { class: FAILURE_CLASSES.cancelled, message: 'task cancelled' },
          // Only where a success found here is followed: else the run would end with no record.
          ...(opts.followRecordedEnd && { unlessAttemptSucceeded: true }),
        }),
      );
      if (opts.followRecordedEnd && recorded && recorded.status !== 'cancelled') {
        log.info('the task had ended before the cancel reached it', { taskId: input.taskId, status: recorded.status });
        if (recorded.status === 'succeeded') return recordedSuccess(recorded);
        const failure = ending ?? { failureClass: FAILURE_CLASSES.crash, message: 'the task failed' };
        throw ApplicationFailure.nonRetryable(
          `task failed after ${recorded.attempt} attempt(s): ${failure.message}`,
          failure.failureClass,
        );
      }
    }
    throw err;
  }
}
