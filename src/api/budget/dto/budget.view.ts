import { ApiProperty } from '@nestjs/swagger';

/** The answer of `GET /v1/budget` and `PUT /v1/budget`, for the API description. */
export class BudgetView {
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Cap on the spend of all tasks per UTC day, in USD; null: no cap.',
  })
  dailyUsd!: number | null;

  @ApiProperty({ description: "What all tasks' attempts ended today (UTC) cost, in USD." })
  spentTodayUsd!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'The cap less the spend, at least 0; null without a cap.' })
  remainingUsd!: number | null;

  @ApiProperty({ description: 'The UTC day the spend is counted for.', example: '2026-11-22' })
  day!: string;

  @ApiProperty({ format: 'date-time', description: 'When the day turns and the spend starts again from zero.' })
  resetsAt!: string;
}

/** The answer of `PUT /v1/tasks/:id/budget`. */
export class TaskBudgetView {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ type: Number, nullable: true, description: "The task's cost cap in USD; null: no cap." })
  budgetUsd!: number | null;

  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'What its attempts cost so far, in USD; null while nothing reported a cost.',
  })
  costUsd!: number | null;
}
