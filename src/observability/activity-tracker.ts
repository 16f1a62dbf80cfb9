import { ApplicationFailure, CancelledFailure, type Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { RunningTask } from '../store/worker-store';
import { FAILURE_CLASSES, type FailureClass } from '../../workflows/definitions';

/** The activity that runs one agent attempt (see activities/agent). */
export const AGENT_ACTIVITY = 'runAgent';

const KNOWN_CLASSES = new Set<string>(Object.values(FAILURE_CLASSES));

/** The failure class an activity's outcome stands for, as the workflow will classify it. */
export function failureClassOf(err: unknown): FailureClass {
  if (err instanceof CancelledFailure) return FAILURE_CLASSES.cancelled;
  if (err instanceof ApplicationFailure && err.type && KNOWN_CLASSES.has(err.type)) return err.type as FailureClass;
  return FAILURE_CLASSES.crash;
}

/** Whether an agent attempt's answer says it was held back (`RunAgentOutput.waiting`): its agent never ran. */
const heldBack = (result: unknown): boolean =>
  typeof result === 'object' && result !== null && (result as { waiting?: unknown }).waiting !== undefined;

/** The ids a log line or a running-task entry carries, from an activity's first argument and its workflow. */
export function taskIdsOf(
  args: readonly unknown[],
  workflowId: string | undefined,
): { taskId?: string; attempt?: number; agent?: string } {
  const first = (typeof args[0] === 'object' && args[0] !== null ? args[0] : {}) as Record<string, unknown>;
  const taskId =
    typeof first.taskId === 'string' ? first.taskId : workflowId?.startsWith('task-') ? workflowId.slice(5) : undefined;
  return {
    taskId,
    attempt: typeof first.attempt === 'number' ? first.attempt : undefined,
    agent: typeof first.agent === 'string' ? first.agent : undefined,
  };
}

export interface TrackerSnapshot {
  running: RunningTask[];
  completed: number;
  failed: number;
  cancelled: number;
}

/**
 * Watches every activity a worker runs, through a Temporal activity interceptor (so the activities
 * themselves know nothing of it):
 * - adds the task id and attempt to every activity log line (the SDK already adds the workflow id);
 * - for agent attempts, logs their start and end, keeps the list of running tasks for the worker
 *   registry, and feeds the schedule-to-start and run-duration histograms by agent and failure class;
 * - counts completed, failed and cancelled executions for the worker registry.
 */
export class ActivityTracker {
  private readonly running = new Map<string, RunningTask>();
  private completed = 0;
  private failed = 0;
  private cancelled = 0;
  private readonly scheduleToStart: Histogram<'agent'>;
  private readonly runDuration: Histogram<'agent' | 'failure_class'>;

  /** `onChange` runs when a task starts or ends, so the registry can report it without waiting. */
  constructor(
    registry: Registry,
    private readonly onChange: () => void = () => undefined,
  ) {
    this.scheduleToStart = new Histogram({
      name: 'atelier_agent_schedule_to_start_seconds',
      help: 'Time an agent attempt waited on the agent task queue before a worker started it.',
      labelNames: ['agent'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    });
    this.runDuration = new Histogram({
      name: 'atelier_agent_run_duration_seconds',
      help: 'Duration of agent attempts on this worker, by agent and failure class (succeeded for a success).',
      labelNames: ['agent', 'failure_class'],
      buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
      registers: [registry],
    });
    const running = this.running;
    new Gauge({
      name: 'atelier_agent_runs_active',
      help: 'Agent attempts running on this worker now, by agent.',
      labelNames: ['agent'],
      registers: [registry],
      collect() {
        this.reset();
        for (const task of running.values()) this.inc({ agent: task.agent });
      },
    });
  }

  /** Agent attempts running now. */
  get runningCount(): number {
    return this.running.size;
  }

  snapshot(): TrackerSnapshot {
    return {
      running: [...this.running.values()],
      completed: this.completed,
      failed: this.failed,
      cancelled: this.cancelled,
    };
  }

  /** For `Worker.create({ interceptors: { activity: [tracker.interceptors] } })`. */
  readonly interceptors: ActivityInterceptorsFactory = (ctx) => {
    let ids: Record<string, unknown> = {};
    return {
      inbound: {
        execute: async (input, next) => {
          const found = taskIdsOf(input.args, ctx.info.workflowExecution?.workflowId);
          ids = Object.fromEntries(
            Object.entries({ taskId: found.taskId, attempt: found.attempt }).filter(([, v]) => v !== undefined),
          );
          if (ctx.info.activityType !== AGENT_ACTIVITY) return this.count(() => next(input));
          return this.runAgent(ctx, found, () => next(input));
        },
      },
      outbound: {
        getLogAttributes: (input, next) => next({ ...input, ...ids }),
      },
    };
  };

  private async count<T>(run: () => Promise<T>, ranNothing: (result: T) => boolean = () => false): Promise<T> {
    try {
      const result = await run();
      if (!ranNothing(result)) this.completed += 1;
      return result;
    } catch (err) {
      if (err instanceof CancelledFailure) this.cancelled += 1;
      else this.failed += 1;
      throw err;
    }
  }

  private async runAgent<T>(
    ctx: Context,
    ids: { taskId?: string; attempt?: number; agent?: string },
    run: () => Promise<T>,
  ): Promise<T> {
    const agent = ids.agent ?? 'unknown';
    const startedAt = Date.now();
    const key = `${ctx.info.workflowExecution?.workflowId ?? ''}/${ctx.info.activityId}`;
    this.scheduleToStart.observe(
      { agent },
      Math.max(0, startedAt - ctx.info.currentAttemptScheduledTimestampMs) / 1000,
    );
    this.running.set(key, {
      taskId: ids.taskId ?? '',
      workflowId: ctx.info.workflowExecution?.workflowId ?? '',
      attempt: ids.attempt ?? ctx.info.attempt,
      agent,
      startedAt: new Date(startedAt).toISOString(),
    });
    this.onChange();
    ctx.log.info('agent attempt started', { agent });
    // Undefined: held back (a breaker, a limit, a budget), its agent not started: no run to time or count.
    let failureClass: FailureClass | undefined = FAILURE_CLASSES.succeeded;
    try {
      const result = await this.count(run, heldBack);
      if (heldBack(result)) failureClass = undefined;
      return result;
    } catch (err) {
      failureClass = failureClassOf(err);
      throw err;
    } finally {
      const seconds = (Date.now() - startedAt) / 1000;
      if (failureClass !== undefined) this.runDuration.observe({ agent, failure_class: failureClass }, seconds);
      this.running.delete(key);
      this.onChange();
      if (failureClass === undefined) ctx.log.info('agent attempt held back', { agent });
      else ctx.log.info('agent attempt finished', { agent, failureClass, durationMs: Math.round(seconds * 1000) });
    }
  }
}
