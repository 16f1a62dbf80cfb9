import { randomUUID } from 'node:crypto';
import { ConflictException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { AgentsFile } from '../../config/agents-file';
import type { AtelierConfig } from '../../config/env';
import { AttemptStore } from '../../store/attempt-store';
import { PlanStore } from '../../store/plan-store';
import { RunStore } from '../../store/run-store';
import { TaskStore, type TaskRow } from '../../store/task-store';
import { inReadOnlySnapshot } from '../../db/transaction';
import { workflowIdForTask } from '../../../workflows/definitions';
import { locksOfTask } from '../locks/lock-input';
import { LockTableRoom, roomOrRepeat } from '../locks/lock-table-room';
import { temporalUnavailable } from '../http/temporal-unavailable';
import {
  recordStartedRun,
  startStrandedSubmission,
  startStoredWorkflow,
  type StoredSubmission,
  type StrandedStart,
} from '../http/start-stored-workflow';
import { refuseOtherRequest, requestFingerprint } from '../http/request-fingerprint';
import { storeOrFind } from '../http/store-or-find';
import { badFields } from '../http/validation';
import { PlansService } from '../plans/plans.service';
import { recordRunClosedInTemporal } from '../runs/closed-run';
import { runsView } from '../runs/run-view';
import { AGENTS, CONFIG, PG_POOL, TEMPORAL_CLIENT } from '../tokens';
import type { CreateTaskDto } from './dto/create-task.dto';
import type { ListTasksQuery } from './dto/list-tasks.query';
import { resolveTaskInput } from './resolve-task-input';
import { decodeCursor, encodeCursor } from './task-cursor';
import { taskWorkflowInput } from './task-workflow-input';
import { taskDetail, taskLinks, taskSummary } from './task-view';
import { isUuid } from '../../../workflows/definitions';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

@Injectable()
export class TasksService {
  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(AGENTS) private readonly agents: AgentsFile,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly store: TaskStore,
    private readonly runs: RunStore,
    private readonly plans: PlanStore,
    private readonly attempts: AttemptStore,
    private readonly planService: PlansService,
    private readonly lockRoom: LockTableRoom,
  ) {}

  /**
   * Records the task, then starts its workflow (id `task-<id>`, so a second start is refused by
   * Temporal). A repeated idempotency key returns the first task if the request is the same (a 422
   * if not); if its workflow never started (the API died in between), it is started now.
   */
  async create(dto: CreateTaskDto) {
    // A repeated key with the same request answers the task stored first, whatever has changed since
    // (the agents file, the directories this replica sees): its first submission was accepted.
    // Only a request with a key is fingerprinted (a body may be a megabyte).
    const fingerprint = dto.idempotencyKey === undefined ? '' : requestFingerprint(dto);
    const stored = dto.idempotencyKey === undefined ? undefined : await this.store.byIdempotencyKey(dto.idempotencyKey);
    if (stored) return this.replay(stored, fingerprint);
    const input = resolveTaskInput(dto, this.agents, (field) => field);
    if (!input.ok) throw badFields(input.problems);
    const repeat = await roomOrRepeat(
      () => this.lockRoom.ensureRoom([locksOfTask(input.task)], 'locks'),
      dto.idempotencyKey,
      (key) => this.store.byIdempotencyKey(key),
    );
    if (repeat) return this.replay(repeat, fingerprint);
    const id = randomUUID();
    const newTask = {
      ...input.task,
      id,
      idempotencyKey: dto.idempotencyKey,
      requestSha256: fingerprint || undefined,
      workflowId: workflowIdForTask(id),
    };
    const { task, created } =
      dto.idempotencyKey === undefined
        ? await storeOrFind(
            { what: 'task', id },
            () => this.store.create(newTask),
            async () => {
              const found = await this.store.get(id);
              return found && { task: found, created: true };
            },
          )
        : await this.store.create(newTask);
    return created ? this.answer(task, true) : this.replay(task, fingerprint);
  }

  /** The answer to a repeated idempotency key: the task it first created, if the request is the same. */
  private replay(task: TaskRow, fingerprint: string) {
    refuseOtherRequest(task, fingerprint, 'task');
    return this.answer(task, false);
  }

  /** The answer to a submission of `task`: its workflow started first if it has not been. */
  private async answer(task: TaskRow, created: boolean) {
    const runId = task.run_id ?? (await this.startWorkflow(task, created));
    return { created, body: this.submitted({ ...task, run_id: runId }) };
  }

  private async startWorkflow(task: TaskRow, created: boolean): Promise<string> {
    const runId = await startStoredWorkflow(this.temporal, this.submission(task, created));
    await recordStartedRun(
      { what: 'task', id: task.id },
      () => this.store.setRunId(task.id, runId),
      "the run's first write records it (RunStore.registerRun)",
    );
    return runId;
  }

  /**
   * Starts the workflow of a task stored without it (see StrandedSubmissionsSweeper), or records the run
   * of one found started already; `untouched` if another process is starting it, or it is no longer
   * stranded.
   */
  startStranded(id: string): Promise<StrandedStart> {
    return startStrandedSubmission(
      this.temporal,
      (start) => this.store.startStranded(id, start),
      (task: TaskRow) => this.submission(task, false),
    );
  }

  private submission(task: TaskRow, created: boolean): StoredSubmission {
    return {
      what: 'task',
      id: task.id,
      workflowType: 'agentTaskWorkflow',
      options: {
        workflowId: task.workflow_id,
        taskQueue: this.config.ATELIER_WORKFLOW_QUEUE,
        priority: { priorityKey: task.priority },
      },
      args: async () => [taskWorkflowInput(task, this.config)],
      created,
      retryable: task.idempotency_key !== null,
      forget: () => this.store.deleteUnstarted(task.id),
    };
  }

  private links(task: Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>) {
    return taskLinks(task, this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE);
  }

  private submitted(task: TaskRow) {
    return {
      id: task.id,
      status: task.status,
      workflowId: task.workflow_id,
      runId: task.run_id,
      links: this.links(task),
    };
  }

  private async find(id: string): Promise<TaskRow> {
    const task = isUuid(id) ? await this.store.get(id) : undefined;
    if (!task) throw new NotFoundException(`no task ${id}`);
    return task;
  }

  async get(id: string) {
    if (!isUuid(id)) throw new NotFoundException(`no task ${id}`);
    // One snapshot: a retry that commits between two reads would mix the old run's row with the new's attempts.
    const read = await inReadOnlySnapshot(this.pool, async (db) => {
      const task = await this.store.get(id, db);
      if (!task) return undefined;
      const attempts = await this.store.attempts(id, db);
      const output = task.result_attempt === null ? null : await this.store.attemptOutput(id, task.result_attempt, db);
      return {
        task,
        attempts,
        output,
        runs: await this.runs.list(id, db),
        runAttempts: await this.runs.attempts(id, db),
      };
    });
    if (!read) throw new NotFoundException(`no task ${id}`);
    const { task, attempts, output, runs, runAttempts } = read;
    const runUi = (runId: string | null) => this.links({ ...task, run_id: runId }).temporalUi;
    return taskDetail(task, attempts, output, this.links(task), runsView(runs, runAttempts, task, runUi));
  }

  async list(query: ListTasksQuery) {
    // No prototype: a key named __proto__ is a label like any other (which no task can have).
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const label of query.label ?? []) {
      const at = label.indexOf(':');
      const key = label.slice(0, at);
      // Every pair must match and a task has one value per key: two values would match nothing.
      if (Object.hasOwn(labels, key)) {
        throw badFields([{ field: 'label', problems: [`label names the key "${key}" twice`] }]);
      }
      labels[key] = label.slice(at + 1);
    }
    let after: { ts: string; id: string } | undefined;
    if (query.cursor !== undefined) {
      after = decodeCursor(query.cursor);
      if (!after) throw badFields([{ field: 'cursor', problems: ['cursor is not one this API returned'] }]);
    }
    const limit = query.limit ?? 50;
    const rows = await this.store.list({ status: query.status, labels, limit: limit + 1, after });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((t) => taskSummary(t, this.links(t))),
      nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_ts, last.id) : null,
    };
  }

  /**
   * Requests cancellation; the workflow kills the agent's process group and records `cancelled`. A
   * plan's task not started yet has no workflow: its plan is asked to cancel it (it never starts it,
   * or cancels it if it started meanwhile). A task stored but never started (its API stopped in
   * between) is started now, as the stranded-submission sweeper would, and cancelled like any other. A
   * task whose run closed in Temporal without recording its end is recorded failed (closed-run.ts),
   * and the cancel refused.
   */
  async cancel(id: string): Promise<{ id: string; status: string }> {
    const task = await this.find(id);
    if (task.status === 'cancelled') return { id, status: task.status };
    if (TERMINAL.has(task.status)) throw new ConflictException(`task ${id} already ${task.status}`);
    // Temporal takes the cancel of a closed workflow as done: ask first whether the run still runs.
    const ended = (await recordRunClosedInTemporal(this.temporal, this.attempts, task))?.status;
    if (ended === 'cancelled') return { id, status: ended };
    if (ended !== undefined) {
      throw new ConflictException(`task ${id} already ${ended}: its workflow is no longer running`);
    }
    const cancelWorkflow = () => this.temporal.workflow.getHandle(task.workflow_id).cancel();
    try {
      await cancelWorkflow();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw temporalUnavailable('could not cancel', err);
      const inPlan = await this.plans.unstartedTask(id);
      if (inPlan) return { id, status: await this.planService.cancelTask(inPlan.planId, inPlan.key) };
      if (task.run_id !== null) throw new ConflictException(`task ${id} is no longer running`);
      // Another process may be starting it (the sweeper, or its own submission): then it has a run soon.
      await this.startStranded(id);
      if ((await this.find(id)).run_id === null) {
        throw new ServiceUnavailableException(`task ${id} is being started; cancel it again in a moment`);
      }
      await cancelWorkflow().catch((again: unknown) => {
        throw temporalUnavailable('could not cancel', again);
      });
    }
    return { id, status: 'cancelling' };
  }
}
