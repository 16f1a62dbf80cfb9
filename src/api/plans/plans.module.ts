import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import { PlanStore } from '../../store/plan-store';
import { PG_POOL } from '../tokens';
import { PlansController } from './plans.controller';
import { PlansService } from './plans.service';

/** Plans: tasks with dependencies (`POST /v1/plans`, `GET /v1/plans/:id`, `POST /v1/plans/:id/cancel`). */
@Module({
  controllers: [PlansController],
  providers: [PlansService, { provide: PlanStore, useFactory: (pool: Pool) => new PlanStore(pool), inject: [PG_POOL] }],
})
export class PlansModule {}
