import { Module } from '@nestjs/common';
import { RunsController } from './runs.controller';
import { RunsService } from './runs.service';

/** Re-running tasks: `POST /v1/tasks/:id/retry` and `POST /v1/tasks/:id/reset`. */
@Module({ controllers: [RunsController], providers: [RunsService] })
export class RunsModule {}
