import { Module } from '@nestjs/common';
import { ObservabilityModule } from '../observability/observability.module';
import { ClosedRunsSweeper } from './closed-runs.sweeper';

/** Records the end of task and plan runs that closed in Temporal without recording it. */
@Module({
  imports: [ObservabilityModule],
  providers: [ClosedRunsSweeper],
})
export class ClosedRunsModule {}
