import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import { AgentStatusStore } from '../../store/agent-status-store';
import { BreakerResetStore } from '../../store/breaker-reset-store';
import { PG_POOL } from '../tokens';
import { AgentsController } from './agents.controller';
import { AgentsService } from './agents.service';

@Module({
  controllers: [AgentsController],
  providers: [
    AgentsService,
    { provide: AgentStatusStore, useFactory: (pool: Pool) => new AgentStatusStore(pool), inject: [PG_POOL] },
    { provide: BreakerResetStore, useFactory: (pool: Pool) => new BreakerResetStore(pool), inject: [PG_POOL] },
  ],
})
export class AgentsModule {}
