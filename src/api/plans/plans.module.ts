import { Module } from '@nestjs/common';
import { LocksModule } from '../locks/locks.module';
import { PlansController } from './plans.controller';
import { PlansService } from './plans.service';

/** Plans: tasks with dependencies (`POST /v1/plans`, `GET /v1/plans/:id`, `POST /v1/plans/:id/cancel`). */
@Module({
  imports: [LocksModule],
  controllers: [PlansController],
  providers: [PlansService],
  exports: [PlansService],
})
export class PlansModule {}
