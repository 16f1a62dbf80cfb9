import { ApiProperty, IntersectionType } from '@nestjs/swagger';
import { TASK_STATUSES, WAIT_KINDS } from '../../../../workflows/definitions';

// What the task routes answer, for the API description: task-view.ts, run-view.ts and TasksService
// build these answers; test/e2e/tasks.e2e.test.ts checks that their fields are these.

const nullableString = (description?: string) => ({ type: String, nullable: true, description });
const nullableNumber = (description?: string) => ({ type: Number, nullable: true, description });
const nullableTime = (description?: string) => ({ type: String, format: 'date-time', nullable: true, description });

export class TaskLinksView {
  @ApiProperty({ example: '/v1/tasks/6b164171-b029-4597-b729-14ee9d951aec' })
  self!: string;

  @ApiProperty({ example: '/v1/tasks/6b164171-b029-4597-b729-14ee9d951aec/logs' })
  logs!: string;

  @ApiProperty({
    description:
      "The workflow's history in the Temporal Web UI: its current run's, or its page while no run is recorded.",
  })
  temporalUi!: string;
}

/** The answer of `POST /v1/tasks` (201, or 200 for a repeated idempotencyKey). */
export class SubmittedTaskView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ enum: TASK_STATUSES, description: 'queued when created; on a repeat, its status now.' })
  status!: string;

  @ApiProperty({ example: 'task-6b164171-b029-4597-b729-14ee9d951aec' })
  workflowId!: string;

  @ApiProperty(nullableString('The run of its workflow.'))
  runId!: string | null;

  @ApiProperty({ type: () => TaskLinksView })
  links!: TaskLinksView;
}

export class TaskErrorView {
  @ApiProperty({ description: 'Its failure class (docs/api.md#failure-classes).', example: 'nonzero_exit' })
  class!: string;

  @ApiProperty(nullableString())
  message!: string | null;
}

/** Why a queued task waits (docs/api.md, `GET /v1/tasks/:id`). */
export class WaitingReasonView {
  @ApiProperty({ enum: WAIT_KINDS })
  kind!: string;

  @ApiProperty()
  agent!: string;

  @ApiProperty()
  message!: string;

  @ApiProperty(nullableTime('When it may lift by itself, as first stored.'))
  until!: string | null;
}

/** A task as `GET /v1/tasks` lists it. */
export class TaskSummaryView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ enum: TASK_STATUSES })
  status!: string;

  @ApiProperty()
  agent!: string;

  @ApiProperty(nullableString())
  model!: string | null;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 5 })
  priority!: number;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  labels!: Record<string, string>;

  @ApiProperty({ type: String, format: 'date-time' })
  createdAt!: string;

  @ApiProperty(nullableTime('When its first attempt started.'))
  startedAt!: string | null;

  @ApiProperty(nullableTime('When it reached its terminal status.'))
  finishedAt!: string | null;

  @ApiProperty({ type: () => TaskErrorView, nullable: true })
  error!: TaskErrorView | null;

  @ApiProperty({ type: [String], description: 'The fallback chain, head first.' })
  agents!: string[];

  @ApiProperty({ type: () => WaitingReasonView, nullable: true, description: 'Only while queued and held back.' })
  waitingReason!: WaitingReasonView | null;

  @ApiProperty({ type: () => TaskLinksView })
  links!: TaskLinksView;
}

/** The answer of `GET /v1/tasks`. */
export class TaskListView {
  @ApiProperty({ type: () => [TaskSummaryView], description: 'Newest first.' })
  items!: TaskSummaryView[];

  @ApiProperty(nullableString('The cursor of the next page; null on the last.'))
  nextCursor!: string | null;
}

/** An attempt of a run (run-view.ts). */
export class RunAttemptView {
  @ApiProperty({ type: 'integer' })
  number!: number;

  @ApiProperty()
  agent!: string;

  @ApiProperty(nullableString())
  model!: string | null;

  @ApiProperty(nullableString('The agent worker that ran it.'))
  worker!: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  startedAt!: string;

  @ApiProperty(nullableTime())
  finishedAt!: string | null;

  @ApiProperty({ type: 'integer', nullable: true })
  exitCode!: number | null;

  @ApiProperty(nullableString('Null while it runs.'))
  failureClass!: string | null;

  @ApiProperty(nullableString())
  error!: string | null;

  @ApiProperty({ type: 'integer', description: 'stdout and stderr.' })
  outputBytes!: number;
}

/** What an attempt's output said (null where the agent says nothing). */
export class AgentReportView {
  @ApiProperty(nullableNumber('USD.'))
  costUsd!: number | null;

  @ApiProperty(nullableNumber())
  inputTokens!: number | null;

  @ApiProperty(nullableNumber())
  cachedInputTokens!: number | null;

  @ApiProperty(nullableNumber())
  outputTokens!: number | null;

  @ApiProperty(nullableNumber())
  turns!: number | null;

  @ApiProperty(nullableString())
  sessionId!: string | null;
}

/** An attempt of the task's current run, with what the agent's output said. */
export class AttemptView extends IntersectionType(RunAttemptView, AgentReportView) {
  @ApiProperty(nullableTime('When a rate limit resets.'))
  resetAt!: string | null;
}

export class RunLinksView {
  @ApiProperty()
  temporalUi!: string;
}

/** A run of the task (run-view.ts). */
export class RunView {
  @ApiProperty({ type: 'integer' })
  number!: number;

  @ApiProperty({ enum: ['submitted', 'retry', 'reset', 'external'] })
  kind!: string;

  @ApiProperty(nullableString())
  runId!: string | null;

  @ApiProperty({ enum: [...TASK_STATUSES, 'superseded'] })
  status!: string;

  @ApiProperty({ type: String, format: 'date-time' })
  createdAt!: string;

  @ApiProperty(nullableTime())
  startedAt!: string | null;

  @ApiProperty(nullableTime())
  finishedAt!: string | null;

  @ApiProperty({ type: () => TaskErrorView, nullable: true })
  error!: TaskErrorView | null;

  @ApiProperty({ type: 'integer', nullable: true, description: 'The run a retry or reset came from.' })
  fromRun!: number | null;

  @ApiProperty({ type: 'integer', nullable: true })
  resetToEventId!: number | null;

  @ApiProperty({ type: () => [RunAttemptView] })
  attempts!: RunAttemptView[];

  @ApiProperty({ type: () => RunLinksView })
  links!: RunLinksView;
}

export class TaskRepoView {
  @ApiProperty()
  path!: string;

  @ApiProperty(nullableString())
  ref!: string | null;
}

/** What the task committed on its branch. */
export class TaskCommitView {
  @ApiProperty(nullableString())
  branch!: string | null;

  @ApiProperty(nullableString())
  baseSha!: string | null;

  @ApiProperty()
  sha!: string;

  @ApiProperty({ type: [String] })
  changedFiles!: string[];

  @ApiProperty(nullableString())
  diffstat!: string | null;

  @ApiProperty({ type: [String] })
  lockViolations!: string[];

  @ApiProperty({ description: 'The route of its diff.' })
  diff!: string;
}

/** The successful attempt's answer. */
export class TaskResultView extends AgentReportView {
  @ApiProperty()
  output!: string;

  @ApiProperty({ type: 'integer', nullable: true })
  exitCode!: number | null;

  @ApiProperty()
  agent!: string;
}

/** The answer of `GET /v1/tasks/:id`. */
export class TaskView extends TaskSummaryView {
  @ApiProperty()
  prompt!: string;

  @ApiProperty(nullableString())
  workdir!: string | null;

  @ApiProperty({ type: 'integer' })
  timeoutSeconds!: number;

  @ApiProperty({ type: 'integer' })
  maxAttempts!: number;

  @ApiProperty()
  workflowId!: string;

  @ApiProperty(nullableString('Its current run.'))
  runId!: string | null;

  @ApiProperty(nullableNumber('Its cost cap in USD.'))
  budgetUsd!: number | null;

  @ApiProperty(nullableNumber('What its attempts cost so far, in USD.'))
  costUsd!: number | null;

  @ApiProperty({ type: [String] })
  locks!: string[];

  @ApiProperty()
  failOnLockViolations!: boolean;

  @ApiProperty({ type: () => TaskRepoView, nullable: true })
  repo!: TaskRepoView | null;

  @ApiProperty({ type: () => TaskCommitView, nullable: true })
  commit!: TaskCommitView | null;

  @ApiProperty({ type: () => [AttemptView], description: "Its current run's attempts." })
  attempts!: AttemptView[];

  @ApiProperty({ type: () => [RunView], description: 'Every run, first first.' })
  runs!: RunView[];

  @ApiProperty({ type: () => TaskResultView, nullable: true, description: 'Null unless it succeeded.' })
  result!: TaskResultView | null;
}

/** The answer of a cancel. */
export class CancelView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ enum: ['cancelling', 'cancelled'] })
  status!: string;
}
