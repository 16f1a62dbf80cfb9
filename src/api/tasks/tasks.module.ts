import { Module } from '@nestjs/common';
import { LocksModule } from '../locks/locks.module';
import { LogsModule } from '../logs/logs.module';
import { PlansModule } from '../plans/plans.module';
import { TasksController } from './tasks.controller';
import { TasksService } from './tasks.service';

@Module({
  imports: [LogsModule, PlansModule, LocksModule],
  controllers: [TasksController],
  providers: [TasksService],
  exports: [TasksService],
})
export class TasksModule {}
