import { ConflictException, Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { temporal } from '@temporalio/proto';
import Long from 'long';
import type { AtelierConfig } from '../../config/env';
import { AttemptStore } from '../../store/attempt-store';
import { PlanStore } from '../../store/plan-store';
import { RunStore } from '../../store/run-store';
import { TaskStore, type TaskRow } from '../../store/task-store';
import { ConcurrencyCap } from '../http/concurrency-cap';
import { lockedTemporalCall } from '../http/locked-temporal-call';
import { temporalUnavailable } from '../http/temporal-unavailable';
import { CONFIG, TEMPORAL_CLIENT } from '../tokens';
import { taskLinks } from '../tasks/task-view';
import { recordRunClosedInTemporal } from './closed-run';
import { findResetPoint } from './reset-point';
import { resetRequestId } from './reset-request-id';
import { isUuid, type AgentTaskInput } from '../../../workflows/definitions';
import { taskWorkflowInput } from '../tasks/task-workflow-input';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
const WORKFLOW_TYPE = 'agentTaskWorkflow';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The gRPC status codes Temporal answers with that this service tells apart. */
const GrpcStatus = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, FAILED_PRECONDITION: 9 } as const;
/**
 * Temporal's refusals of a reset that no try again changes, by code: a 409 that names the code. NOT_FOUND:
 * the history expired between its read and the reset.
 */
const RESET_REFUSALS = ['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'NOT_FOUND'] as const;

/** How a run was started, to start the next one alike (on the task queues configured now). */
interface StartRecipe {
  args: unknown[];
  priorityKey: number;
}

/** The answer to a retry or a reset: the new run. */
export interface NewRun {
  id: string;
  run: number;
  kind: 'retry' | 'reset';
  status: 'queued';
  workflowId: string;
  runId: string;
  fromRun: number;
  resetToEventId?: number;
  links: ReturnType<typeof taskLinks>;
}

/**
 * Retries and resets starting their run at once in one API process, at most. Each holds a pool
 * connection (its task's row lock) while Temporal answers, up to 30 s: with Temporal hung, more would
 * leave the API's other calls without connections.
 */
export const MAX_RUN_STARTS = 5;
/** When a retry or reset refused for MAX_RUN_STARTS may try again. */
const RUN_STARTS_RETRY_AFTER_SECONDS = 5;

const grpcCode = (err: unknown): number | undefined => (isGrpcServiceError(err) ? err.code : undefined);

/**
 * Re-runs finished tasks. Each new run is recorded (task_runs, an audit event) in the same transaction
 * that starts it in Temporal, so a run exists in PostgreSQL exactly when it was started.
 */
@Injectable()
export class RunsService {
  private readonly logger = new Logger(RunsService.name);
  private readonly runStarts = new ConcurrencyCap(MAX_RUN_STARTS, 'retries and resets', RUN_STARTS_RETRY_AFTER_SECONDS);

  /** RunStore.startRun, within MAX_RUN_STARTS. */
  private readonly startRun: RunStore['startRun'] = (...args) => this.runStarts.run(() => this.runs.startRun(...args));

  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly tasks: TaskStore,
    private readonly runs: RunStore,
    private readonly attempts: AttemptStore,
    private readonly plans: PlanStore,
  ) {}

  /**
   * The run a retry's start met in Temporal. Another run than the task's last is this retry's own start
   * whose answer was lost (the client was told 503 and tried again), not yet recorded: it is recorded as
   * the retry, so trying again never starts one run more. (Once that run has written to the database it
   * has recorded itself, kind `external`, and the task is no longer finished: the retry is a 409 then.)
   * The task's last run still closing is a 409.
   */
  private async lostStart(task: TaskRow): Promise<string> {
    const running = await lockedTemporalCall(this.temporal, () =>
      this.temporal.workflow.getHandle(task.workflow_id).describe(),
    ).catch((err: unknown) => {
      throw temporalUnavailable('could not start the new run', err);
    });
    if (running.runId === task.run_id) {
      throw new ConflictException(`task ${task.id} still has a running workflow; try again when it has closed`);
    }
    return running.runId;
  }

  private async find(id: string): Promise<TaskRow> {
    const task = isUuid(id) ? await this.tasks.get(id) : undefined;
    if (!task) throw new NotFoundException(`no task ${id}`);
    return task;
  }

  /**
   * A new run of a finished task under the same workflow id, with the same workflow input as the run
   * before (read from that run's history; rebuilt from the task when the history is gone), on the task
   * queues configured now. A task whose run closed in Temporal without recording its end is recorded
   * failed first (closed-run.ts).
   */
  async retry(id: string): Promise<NewRun> {
    const found = await this.find(id);
    const ended = TERMINAL.has(found.status)
      ? undefined
      : (await recordRunClosedInTemporal(this.temporal, this.attempts, found))?.status;
    const task = ended === undefined ? found : { ...found, status: ended };
    if (!TERMINAL.has(task.status)) {
      throw new ConflictException(`task ${id} is ${task.status}: only a finished task can be retried`);
    }
    // Run on its own, it would start without the work of the dependencies its plan waited for.
    const skipped = await this.plans.skippedDependant(id);
    if (skipped !== undefined) {
      throw new ConflictException(
        `task ${id} was skipped by its plan (${skipped}) and never ran: submit it again, alone or in a new plan`,
      );
    }
    const recipe = await this.recipeOf(task);
    const started = await this.startRun(
      id,
      'retry',
      (t) => {
        // Another retry may have started a run between the read above and this lock (and it may have
        // ended already): that run is the one to look at now, not a reason to start one more.
        if (!TERMINAL.has(t.status) || t.run_id !== task.run_id) {
          throw new ConflictException(`task ${id} changed meanwhile (now ${t.status}); look again and retry`);
        }
      },
      async () => {
        try {
          const handle = await lockedTemporalCall(this.temporal, () =>
            this.temporal.workflow.start(WORKFLOW_TYPE, {
              workflowId: task.workflow_id,
              taskQueue: this.config.ATELIER_WORKFLOW_QUEUE,
              args: recipe.args,
              priority: { priorityKey: recipe.priorityKey },
            }),
          );
          return { runId: handle.firstExecutionRunId };
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) return { runId: await this.lostStart(task) };
          throw temporalUnavailable('could not start the new run', err);
        }
      },
    );
    if (!started) throw new NotFoundException(`no task ${id}`);
    return this.answer(task, 'retry', started);
  }

  /**
   * Resets a failed task's workflow to just before its last failed step (Temporal's
   * ResetWorkflowExecution): the new run keeps the history up to the workflow task that scheduled the
   * failed activity and runs from there, so only that step and what follows run again.
   */
  async reset(id: string): Promise<NewRun> {
    const task = await this.find(id);
    if (task.status !== 'failed') {
      throw new ConflictException(`task ${id} is ${task.status}: only a failed task can be reset`);
    }
    const runId = task.run_id ?? undefined;
    const events = await this.history(task.workflow_id, runId);
    const point = findResetPoint(events);
    if (!point) {
      throw new ConflictException(`task ${id} has no failed step to reset to: its workflow failed before running one`);
    }
    const held = await this.heldResources(events);
    if (held) {
      // The reset run would replay the old run's grant and worktree, both given back when it ended.
      throw new ConflictException(
        `task ${id} ran with ${held}, which its failed run gave back: a reset would run it without them; retry it instead (POST /v1/tasks/${id}/retry)`,
      );
    }
    const started = await this.startRun(
      id,
      'reset',
      (t) => {
        if (t.status !== 'failed' || t.run_id !== task.run_id) {
          throw new ConflictException(`task ${id} changed meanwhile (now ${t.status}); look again and retry`);
        }
      },
      async () => {
        try {
          const res = await lockedTemporalCall(this.temporal, () =>
            this.temporal.workflowService.resetWorkflowExecution({
              namespace: this.config.TEMPORAL_NAMESPACE,
              workflowExecution: { workflowId: task.workflow_id, runId },
              reason: `atelier: reset to before the last failed step (${point.activityType}, event ${point.failedEventId})`,
              workflowTaskFinishEventId: Long.fromNumber(point.workflowTaskCompletedEventId),
              // The same for every try: a reset Temporal made but whose transaction failed is not made twice.
              requestId: resetRequestId(task.workflow_id, runId, point.workflowTaskCompletedEventId),
            }),
          );
          return {
            runId: res.runId,
            detail: { resetToEventId: point.workflowTaskCompletedEventId, failedEventId: point.failedEventId },
          };
        } catch (err) {
          const refusal = RESET_REFUSALS.find((name) => GrpcStatus[name] === grpcCode(err));
          if (refusal === undefined) throw temporalUnavailable('could not reset the workflow', err);
          // Temporal's own words (its internals, other runs' ids) go to the log only, as for a 503.
          this.logger.warn(`Temporal refused the reset of task ${id}: ${(err as Error).message}`);
          throw new ConflictException(`Temporal refused the reset (${refusal}); the API's log says why`);
        }
      },
    );
    if (!started) throw new NotFoundException(`no task ${id}`);
    return { ...this.answer(task, 'reset', started), resetToEventId: point.workflowTaskCompletedEventId };
  }

  private answer(
    task: TaskRow,
    kind: 'retry' | 'reset',
    started: { number: number; runId: string; fromRun: number },
  ): NewRun {
    return {
      id: task.id,
      run: started.number,
      kind,
      status: 'queued',
      workflowId: task.workflow_id,
      runId: started.runId,
      fromRun: started.fromRun,
      links: taskLinks({ ...task, run_id: started.runId }, this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE),
    };
  }

  private async history(workflowId: string, runId: string | undefined): Promise<HistoryEvent[]> {
    try {
      const history = await this.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
      return history.events ?? [];
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || grpcCode(err) === GrpcStatus.NOT_FOUND) {
        throw new ConflictException(`the workflow history of ${workflowId} is no longer kept by Temporal`);
      }
      throw temporalUnavailable('could not read the workflow history', err);
    }
  }

  /** What the run held for as long as it ran: file locks, a git worktree (from its workflow input). */
  private async heldResources(events: HistoryEvent[]): Promise<string | undefined> {
    const payloads = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    const [input] = await decodeArrayFromPayloads(this.temporal.options.loadedDataConverter, payloads);
    const { locks, repo } = (input ?? {}) as Partial<Pick<AgentTaskInput, 'locks' | 'repo'>>;
    if (locks && repo) return 'file locks and a git worktree';
    if (locks) return 'file locks';
    if (repo) return 'a git worktree';
    return undefined;
  }

  /**
   * The previous run's start, from its history; rebuilt from the task row when that is gone. Either
   * way on the task queues configured now: workers of a queue renamed since poll it no more.
   */
  private async recipeOf(task: TaskRow): Promise<StartRecipe> {
    let events: HistoryEvent[] = [];
    try {
      events = await this.history(task.workflow_id, task.run_id ?? undefined);
    } catch (err) {
      if (!(err instanceof ConflictException)) throw err;
    }
    const start = events[0]?.workflowExecutionStartedEventAttributes;
    if (start?.workflowType?.name === WORKFLOW_TYPE) {
      const [input, ...rest] = await decodeArrayFromPayloads(
        this.temporal.options.loadedDataConverter,
        start.input?.payloads,
      );
      return {
        args: [{ ...(input as AgentTaskInput), agentTaskQueue: this.config.ATELIER_AGENT_QUEUE }, ...rest],
        priorityKey: start.priority?.priorityKey ?? task.priority,
      };
    }
    return {
      args: [taskWorkflowInput(task, this.config)],
      priorityKey: task.priority,
    };
  }
}
