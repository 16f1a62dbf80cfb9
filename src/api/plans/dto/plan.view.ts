import { ApiProperty } from '@nestjs/swagger';
import { PLAN_ON_FAILURE, PLAN_STATUSES, TASK_STATUSES } from '../../../../workflows/definitions';
import { TaskErrorView } from '../../tasks/dto/task.view';

// What the plan routes answer, for the API description: PlansService builds these answers;
// test/e2e/plans.e2e.test.ts checks that their fields are these.

export class PlanTaskLinksView {
  @ApiProperty({ example: '/v1/tasks/6b164171-b029-4597-b729-14ee9d951aec' })
  self!: string;
}

/** A task of a plan, as `GET /v1/plans/:id` shows it. */
export class PlanTaskView {
  @ApiProperty()
  key!: string;

  @ApiProperty({ format: 'uuid' })
  taskId!: string;

  @ApiProperty({ type: [String] })
  dependsOn!: string[];

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 5 })
  priority!: number;

  @ApiProperty()
  agent!: string;

  @ApiProperty({
    enum: [...TASK_STATUSES, 'skipped'],
    description: 'Its own status, or skipped when the plan decided never to start it.',
  })
  status!: string;

  @ApiProperty({ type: String, nullable: true })
  skippedReason!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;

  @ApiProperty({ type: () => TaskErrorView, nullable: true })
  error!: TaskErrorView | null;

  @ApiProperty({ type: () => PlanTaskLinksView })
  links!: PlanTaskLinksView;
}

/** The answer of `GET /v1/plans/:id`, and of `POST /v1/plans`. */
export class PlanView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ enum: PLAN_STATUSES })
  status!: string;

  @ApiProperty({ type: 'integer' })
  maxParallel!: number;

  @ApiProperty({ enum: PLAN_ON_FAILURE })
  onFailure!: string;

  @ApiProperty({ example: 'plan-6b164171-b029-4597-b729-14ee9d951aec' })
  workflowId!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: "Its workflow's run; null until recorded (and on a repeat of a plan that ended unrecorded).",
  })
  runId!: string | null;

  @ApiProperty({ type: String, format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;

  @ApiProperty({ type: () => [PlanTaskView] })
  tasks!: PlanTaskView[];
}
