import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import { BudgetStore } from '../../store/budget-store';
import { PG_POOL } from '../tokens';
import { BudgetController } from './budget.controller';
import { BudgetService } from './budget.service';

@Module({
  controllers: [BudgetController],
  providers: [
    BudgetService,
    { provide: BudgetStore, useFactory: (pool: Pool) => new BudgetStore(pool), inject: [PG_POOL] },
  ],
})
export class BudgetModule {}
