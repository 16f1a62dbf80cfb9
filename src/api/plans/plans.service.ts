import { randomUUID } from 'node:crypto';
import { ConflictException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AgentsFile } from '../../config/agents-file';
import type { AtelierConfig } from '../../config/env';
import { AttemptStore } from '../../store/attempt-store';
import { PlanStore, type NewPlanTask, type PlanRow, type PlanTaskRow } from '../../store/plan-store';
import { TaskStore } from '../../store/task-store';
import {
  CANCEL_PLAN_TASK_SIGNAL,
  workflowIdForPlan,
  workflowIdForTask,
  type PlanInput,
} from '../../../workflows/definitions';
import { findGraphProblems } from '../../../workflows/plan-graph';
import { temporalUnavailable } from '../http/temporal-unavailable';
import { locksOfTask } from '../locks/lock-input';
import { LockTableRoom, roomOrRepeat } from '../locks/lock-table-room';
import { retryTransient } from '../../db/transient';
import {
  recordStartedRun,
  startStrandedSubmission,
  startStoredWorkflow,
  storedAnyway,
  type StoredSubmission,
  type StrandedStart,
} from '../http/start-stored-workflow';
import { refuseOtherRequest, requestFingerprint } from '../http/request-fingerprint';
import { storeOrFind } from '../http/store-or-find';
import { badFields, type FieldProblem } from '../http/validation';
import { resolveTaskInput } from '../tasks/resolve-task-input';
import { taskWorkflowInput } from '../tasks/task-workflow-input';
import { AGENTS, CONFIG, TEMPORAL_CLIENT } from '../tokens';
import type { CreatePlanDto, PlanTaskDto } from './dto/create-plan.dto';
import { isUuid } from '../../../workflows/definitions';
import { recordPlanClosedInTemporal } from './closed-plan';

const DEFAULT_MAX_PARALLEL = 4;
/** The label each task of a plan carries, its value the plan's id. */
const PLAN_LABEL = 'plan';

@Injectable()
export class PlansService {
  constructor(
    @Inject(CONFIG) private readonly config: AtelierConfig,
    @Inject(AGENTS) private readonly agents: AgentsFile,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    private readonly store: PlanStore,
    private readonly tasks: TaskStore,
    private readonly attempts: AttemptStore,
    private readonly lockRoom: LockTableRoom,
  ) {}

  /**
   * Validates the graph (unknown keys, cycles) and every task as `POST /v1/tasks` would, stores the plan
   * with all its tasks in one transaction, then starts the plan workflow `plan-<id>`. A repeated
   * idempotency key answers the plan stored first; if its workflow never started (the API died in
   * between), it is started now.
   */
  async create(dto: CreatePlanDto): Promise<{ created: boolean; body: Awaited<ReturnType<PlansService['get']>> }> {
    // A repeated key with the same request answers the plan stored first, whatever has changed since
    // (see TasksService.create).
    // Only a request with a key is fingerprinted (a body may be a megabyte).
    const fingerprint = dto.idempotencyKey === undefined ? '' : requestFingerprint(dto);
    const stored = dto.idempotencyKey === undefined ? undefined : await this.store.byIdempotencyKey(dto.idempotencyKey);
    if (stored) return this.replay(stored, fingerprint);
    const problems: FieldProblem[] = findGraphProblems(
      dto.tasks.map((t) => ({ key: t.key, dependsOn: t.dependsOn ?? [] })),
    ).map((p) => ({
      field: p.index === undefined ? 'tasks' : `tasks.${p.index}.${p.field ?? 'dependsOn'}`,
      problems: [p.message],
    }));
    const planId = randomUUID();
    const tasks = dto.tasks.map((t, index) => this.planTask(t, index, planId, problems));
    if (problems.length > 0) throw badFields(problems);
    // A plan's tasks ask for their locks when they start: at most maxParallel at once.
    const repeat = await roomOrRepeat(
      () =>
        this.lockRoom.ensureRoom(
          (tasks as NewPlanTask[]).map(locksOfTask),
          'tasks',
          dto.maxParallel ?? DEFAULT_MAX_PARALLEL,
        ),
      dto.idempotencyKey,
      (key) => this.store.byIdempotencyKey(key),
    );
    if (repeat) return this.replay(repeat, fingerprint);
    const newPlan = {
      id: planId,
      idempotencyKey: dto.idempotencyKey,
      requestSha256: fingerprint || undefined,
      maxParallel: dto.maxParallel ?? DEFAULT_MAX_PARALLEL,
      onFailure: dto.onFailure ?? 'stop',
      workflowId: workflowIdForPlan(planId),
      tasks: tasks as NewPlanTask[],
    };
    const { plan, created } =
      dto.idempotencyKey === undefined
        ? await storeOrFind(
            { what: 'plan', id: planId },
            () => this.store.create(newPlan),
            async () => {
              const found = await this.store.get(planId);
              return found && { plan: found.plan, created: true };
            },
          )
        : await this.store.create(newPlan);
    return created ? this.answer(plan, true) : this.replay(plan, fingerprint);
  }

  /** The answer to a repeated idempotency key: the plan it first created, if the request is the same. */
  private replay(plan: PlanRow, fingerprint: string) {
    refuseOtherRequest(plan, fingerprint, 'plan');
    return this.answer(plan, false);
  }

  /**
   * The answer to a submission of `plan`: its workflow started first if it has not been. A plan that
   * has ended is never started again, even when its run was not recorded (its workflow, gone past
   * Temporal's retention, would no longer refuse a second start): its run id is then null.
   */
  private async answer(plan: PlanRow, created: boolean) {
    const runId = plan.run_id ?? (plan.status === 'running' ? await this.startWorkflow(plan, created) : null);
    // The plan runs: a read that fails now must not look like a failed submission (a 503).
    const body = await retryTransient(() => this.get(plan.id)).catch((err: unknown) => {
      throw storedAnyway({ what: 'plan', id: plan.id }, 'runs, but could not be read back', err);
    });
    return { created, body: { ...body, runId } };
  }

  /**
   * Starts the plan's workflow from its stored tasks and records its run. The workflow runs, whatever
   * becomes of that write: if it fails for good, the stranded-submission sweeper finds the started
   * workflow and records its run.
   */
  private async startWorkflow(plan: PlanRow, created: boolean): Promise<string> {
    const runId = await startStoredWorkflow(this.temporal, this.submission(plan, created));
    await recordStartedRun(
      { what: 'plan', id: plan.id },
      () => this.store.setRunId(plan.id, runId),
      'the stranded-submission sweeper records it',
    );
    return runId;
  }

  /**
   * Starts the workflow of a plan stored without it (see StrandedSubmissionsSweeper), or records the run
   * of one found started already; `untouched` if another process is starting it, or it is no longer
   * stranded.
   */
  startStranded(id: string): Promise<StrandedStart> {
    return startStrandedSubmission(
      this.temporal,
      (start) => this.store.startStranded(id, start),
      (plan: PlanRow) => this.submission(plan, false),
    );
  }

  private submission(plan: PlanRow, created: boolean): StoredSubmission {
    return {
      what: 'plan',
      id: plan.id,
      workflowType: 'planWorkflow',
      options: { workflowId: plan.workflow_id, taskQueue: this.config.ATELIER_WORKFLOW_QUEUE },
      args: async (): Promise<[PlanInput]> => [
        {
          planId: plan.id,
          maxParallel: plan.max_parallel,
          onFailure: plan.on_failure,
          tasks: (await this.store.taskInputs(plan.id)).map((t) => ({
            key: t.key,
            dependsOn: t.depends_on,
            task: { ...taskWorkflowInput(t, this.config), resultForPlan: true },
          })),
        },
      ],
      created,
      retryable: plan.idempotency_key !== null,
      forget: () => this.store.deleteUnstarted(plan.id),
    };
  }

  /** One task of the plan as a task row, or undefined after adding its problems (named by index). */
  private planTask(t: PlanTaskDto, index: number, planId: string, problems: FieldProblem[]): NewPlanTask | undefined {
    const input = resolveTaskInput(t, this.agents, (field) => `tasks.${index}.${field}`);
    if (!input.ok) problems.push(...input.problems);
    // Every task of a plan is labelled with the plan's id: a label of its own by that name would be lost.
    const ownPlanLabel = t.labels?.[PLAN_LABEL] !== undefined;
    if (ownPlanLabel) {
      problems.push({
        field: `tasks.${index}.labels.${PLAN_LABEL}`,
        problems: [`the label "${PLAN_LABEL}" is reserved within a plan: each task gets the plan's id`],
      });
    }
    if (!input.ok || ownPlanLabel) return undefined;
    const id = randomUUID();
    return {
      ...input.task,
      id,
      key: t.key,
      dependsOn: t.dependsOn ?? [],
      labels: { ...input.task.labels, [PLAN_LABEL]: planId },
      workflowId: workflowIdForTask(id),
    };
  }

  private async find(id: string): Promise<{ plan: PlanRow; tasks: PlanTaskRow[] }> {
    const found = isUuid(id) ? await this.store.get(id) : undefined;
    if (!found) throw new NotFoundException(`no plan ${id}`);
    return found;
  }

  async get(id: string) {
    const { plan, tasks } = await this.find(id);
    return {
      id: plan.id,
      status: plan.status,
      maxParallel: plan.max_parallel,
      onFailure: plan.on_failure,
      workflowId: plan.workflow_id,
      runId: plan.run_id,
      createdAt: plan.created_at,
      finishedAt: plan.finished_at,
      tasks: tasks.map((t) => ({
        key: t.key,
        taskId: t.task_id,
        dependsOn: t.depends_on,
        priority: t.priority,
        agent: t.agent,
        // A task the plan decided never to start shows as `skipped` (its task row says `cancelled`), until
        // it is retried on its own: then it shows its own status.
        status: t.skipped_reason !== null && t.current_run === 1 ? 'skipped' : t.status,
        skippedReason: t.skipped_reason,
        startedAt: t.started_at,
        finishedAt: t.finished_at,
        error: t.error_class === null ? null : { class: t.error_class, message: t.error_message },
        links: { self: `/v1/tasks/${t.task_id}` },
      })),
    };
  }

  /**
   * Cancels the plan: running tasks are cancelled (their agents killed), the others skipped. A plan
   * stored but never started (its API stopped in between) is started now, as the stranded-submission
   * sweeper would, and cancelled like any other. A plan whose workflow closed in Temporal without
   * recording its end is recorded failed (closed-plan.ts), and the cancel refused.
   */
  async cancel(id: string): Promise<{ id: string; status: string }> {
    const plan = await this.startedPlan(id);
    if (plan.status === 'cancelled') return { id, status: plan.status };
    if (plan.status !== 'running') throw new ConflictException(`plan ${id} already ${plan.status}`);
    try {
      await this.temporal.workflow.getHandle(plan.workflow_id).cancel();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new ConflictException(`plan ${id} is no longer running`);
      throw temporalUnavailable('could not cancel', err);
    }
    return { id, status: 'cancelling' };
  }

  /**
   * Asks plan `planId` to cancel its task `key`, which it has not started: the plan skips it, or
   * cancels it if it started meanwhile. As for `cancel`, a plan never started is started first, and a
   * plan whose workflow closed without recording its end is recorded (which skips the task).
   */
  async cancelTask(planId: string, key: string): Promise<'cancelling' | 'cancelled'> {
    const plan = await this.startedPlan(planId);
    if (plan.status !== 'running') {
      const task = (await this.find(planId)).tasks.find((t) => t.key === key);
      if (task?.status === 'cancelled') return 'cancelled';
      throw new ConflictException(`task "${key}" of plan ${planId} is no longer running`);
    }
    try {
      await this.temporal.workflow.getHandle(plan.workflow_id).signal(CANCEL_PLAN_TASK_SIGNAL, key);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new ConflictException(`task "${key}" of plan ${planId} is no longer running`);
      }
      throw temporalUnavailable('could not cancel', err);
    }
    return 'cancelling';
  }

  /**
   * The plan, once its workflow has a run: one never started is started now (another process may be
   * starting it; then it is asked to try again in a moment), and one whose workflow closed without
   * recording its end has that end recorded first.
   */
  private async startedPlan(id: string): Promise<PlanRow> {
    let { plan } = await this.find(id);
    if (plan.status === 'running' && plan.run_id === null) {
      await this.startStranded(id);
      ({ plan } = await this.find(id));
      if (plan.status === 'running' && plan.run_id === null) {
        throw new ServiceUnavailableException(`plan ${id} is being started; try again in a moment`);
      }
    }
    if (plan.status !== 'running') return plan;
    const ended = await recordPlanClosedInTemporal(
      this.temporal,
      { plans: this.store, tasks: this.tasks, attempts: this.attempts },
      plan,
    );
    return ended === undefined ? plan : { ...plan, status: ended.status };
  }
}
