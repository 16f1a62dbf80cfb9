import { InternalServerErrorException, Logger } from '@nestjs/common';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { retryTransient } from '../../db/transient';
import { lockedTemporalCall } from './locked-temporal-call';
import { temporalUnavailable } from './temporal-unavailable';

const logger = new Logger('StoredSubmission');

/**
 * How long the API asks Temporal whether a start whose answer was lost got through: short, since the
 * start itself may have waited out its whole deadline already.
 */
export const LOST_START_LOOKUP_MS = 5000;

/** A submission whose rows are stored already, to start as its workflow. */
export interface StoredSubmission {
  /** `task` or `plan`, for the error. */
  what: 'task' | 'plan';
  /** The task's or plan's id. */
  id: string;
  workflowType: string;
  options: Omit<WorkflowStartOptions, 'args'> & { workflowId: string };
  /** The workflow's arguments, read from the stored rows as it starts (a failed read fails the start). */
  args: () => Promise<unknown[]>;
  /** Whether this request stored the rows, and whether a retry can find them again (an idempotency key). */
  created: boolean;
  retryable: boolean;
  /**
   * Removes the stored rows, which nothing will start; answers the run id instead if the submission
   * was started meanwhile (by the stranded-submission sweeper), and then keeps them.
   */
  forget: () => Promise<string | undefined>;
}

/**
 * Starts the workflow of a stored submission and answers its run id. A submission starts once: a
 * start refused because the workflow exists, or existed and has closed, answers that workflow's run
 * (a repeated submission, or one the sweeper started). Any other failure is a 503; the start may have
 * reached Temporal even though its answer did not reach us. With an idempotency key the rows stay,
 * and the client's retry finds or starts the same workflow. Without one, Temporal is asked whether the
 * workflow exists: if it does, the start got through and its run is the answer; if it does not, rows
 * this request stored are removed, and the client submits again. If Temporal cannot say, or the rows
 * cannot be removed (the database is unreachable too), the answer is a 500 that names the stored
 * submission and says not to submit it again, since the stranded-submission sweeper will start it.
 */
export async function startStoredWorkflow(temporal: Client, s: StoredSubmission): Promise<string> {
  return (await startOrFindStoredWorkflow(temporal, s)).runId;
}

/**
 * What a start of a stranded submission did: started its workflow, found it started already (by an API
 * that stopped before recording its run, or whose write failed) and recorded that run, or left the row
 * alone (another process holds it, or it is no longer stranded).
 */
export type StrandedStart = 'started' | 'found' | 'untouched';

/**
 * Starts a stranded submission: `lockAndRecord` locks its row (if it is still stranded and free) and
 * records the run id of the start it is given, whose Temporal calls have the locked-call deadline.
 */
export async function startStrandedSubmission<R>(
  temporal: Client,
  lockAndRecord: (start: (row: R) => Promise<string>) => Promise<boolean>,
  submission: (row: R) => StoredSubmission,
): Promise<StrandedStart> {
  let found = false;
  const locked = await lockAndRecord(async (row) => {
    const run = await lockedTemporalCall(temporal, () => startOrFindStoredWorkflow(temporal, submission(row)));
    found = run.found;
    return run.runId;
  });
  if (!locked) return 'untouched';
  return found ? 'found' : 'started';
}

/** startStoredWorkflow, and whether the workflow was found started already (its start refused). */
export async function startOrFindStoredWorkflow(
  temporal: Client,
  s: StoredSubmission,
): Promise<{ runId: string; found: boolean }> {
  let sent = false;
  try {
    const options = { ...s.options, args: await s.args(), workflowIdReusePolicy: 'REJECT_DUPLICATE' } as const;
    sent = true;
    return { runId: (await temporal.workflow.start(s.workflowType, options)).firstExecutionRunId, found: false };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      // Temporal may go away between the two calls: a 503 then, which the client may retry.
      return temporal.workflow
        .getHandle(s.options.workflowId)
        .describe()
        .then(
          (d) => ({ runId: d.runId, found: true }),
          (describing: unknown) => {
            throw temporalUnavailable(`could not look up the ${s.what}'s started workflow`, describing);
          },
        );
    }
    if (s.created && !s.retryable) {
      const startedAfterAll = sent ? await runOfLostStart(temporal, s, err) : undefined;
      if (startedAfterAll !== undefined) return { runId: startedAfterAll, found: false };
      const startedMeanwhile = await s.forget().catch((forgetting: unknown) => {
        throw storedAnyway(s, 'its workflow could not be started now; the API will start it', err, forgetting);
      });
      if (startedMeanwhile !== undefined) return { runId: startedMeanwhile, found: true };
    }
    throw temporalUnavailable(`could not start the ${s.what} workflow`, err);
  }
}

/**
 * The run of a workflow whose start failed without an answer but reached Temporal all the same, or
 * undefined when Temporal has no such workflow; when Temporal cannot say, a 500 that keeps the rows.
 */
function runOfLostStart(temporal: Client, s: StoredSubmission, startError: unknown): Promise<string | undefined> {
  return temporal
    .withDeadline(Date.now() + LOST_START_LOOKUP_MS, () => temporal.workflow.getHandle(s.options.workflowId).describe())
    .then(
      (d) => d.runId,
      (describing: unknown) => {
        if (describing instanceof WorkflowNotFoundError) return undefined;
        throw storedAnyway(s, 'its workflow may have started; the API will start it if not', startError, describing);
      },
    );
}

/**
 * The answer when a submission is stored and runs, or will, but the request could not finish: a 500
 * (not a 503, which says to try again) that says so, so a client without an idempotency key does not
 * submit the same work a second time.
 */
export function storedAnyway(
  s: Pick<StoredSubmission, 'what' | 'id'>,
  what: string,
  ...causes: unknown[]
): InternalServerErrorException {
  // The answer names no cause (it may name hosts): the log does, as for any 500.
  logger.error(`${s.what} ${s.id} is stored and ${what}: ${causes.map((c) => (c as Error)?.message).join('; ')}`);
  return new InternalServerErrorException(
    `${s.what} ${s.id} is stored and ${what}: do not submit it again (GET /v1/${s.what}s/${s.id} shows it)`,
  );
}

/**
 * Writes the run id of a workflow this request started. The workflow runs whatever becomes of the
 * write: an error now would have a client without an idempotency key submit it again. Transient
 * failures are retried; one that lasts is logged, and `recordedLater` says what records the run then.
 */
export async function recordStartedRun(
  s: Pick<StoredSubmission, 'what' | 'id'>,
  write: () => Promise<void>,
  recordedLater: string,
): Promise<void> {
  await retryTransient(write).catch((err: Error) =>
    logger.warn(`${s.what} ${s.id} started, but its run id could not be recorded (${recordedLater}): ${err.message}`),
  );
}
