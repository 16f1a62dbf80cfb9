import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import { WorkerStore } from '../../store/worker-store';
import { PG_POOL } from '../tokens';
import { QueueStatsService } from './queue-stats.service';
import { WorkersController } from './workers.controller';
import { WorkersService } from './workers.service';

@Module({
  controllers: [WorkersController],
  providers: [
    { provide: WorkerStore, useFactory: (pool: Pool) => new WorkerStore(pool), inject: [PG_POOL] },
    QueueStatsService,
    WorkersService,
  ],
  exports: [QueueStatsService, WorkerStore],
})
export class WorkersModule {}
