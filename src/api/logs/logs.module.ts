import { Module } from '@nestjs/common';
import { LogStreamService } from './log-stream.service';
import { TaskActivityListener } from './task-activity-listener';

/** Live task logs over Server-Sent Events, from PostgreSQL. */
@Module({
  providers: [TaskActivityListener, LogStreamService],
  exports: [LogStreamService],
})
export class LogsModule {}
