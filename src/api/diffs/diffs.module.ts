import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import { WorktreeStore } from '../../store/worktree-store';
import { PG_POOL } from '../tokens';
import { DiffsController } from './diffs.controller';

/** `GET /v1/tasks/:id/diff`: the patch of a task that worked in a git worktree. */
@Module({
  controllers: [DiffsController],
  providers: [{ provide: WorktreeStore, useFactory: (pool: Pool) => new WorktreeStore(pool), inject: [PG_POOL] }],
})
export class DiffsModule {}
