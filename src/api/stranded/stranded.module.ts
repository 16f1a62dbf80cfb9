import { Module } from '@nestjs/common';
import { ObservabilityModule } from '../observability/observability.module';
import { PlansModule } from '../plans/plans.module';
import { TasksModule } from '../tasks/tasks.module';
import { StrandedSubmissionsSweeper } from './stranded-submissions.sweeper';

/** Starts tasks and plans stored by an API process that stopped before it started their workflows. */
@Module({
  imports: [TasksModule, PlansModule, ObservabilityModule],
  providers: [StrandedSubmissionsSweeper],
})
export class StrandedModule {}
