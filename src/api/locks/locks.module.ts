import { Module } from '@nestjs/common';
import { LocksController } from './locks.controller';
import { LocksService } from './locks.service';
import { LockTableRoom } from './lock-table-room';

/**
 * File locks: `GET /v1/locks?repo=` reads a repository's lock manager workflow; submissions ask
 * LockTableRoom whether their locks fit.
 */
@Module({ controllers: [LocksController], providers: [LocksService, LockTableRoom], exports: [LockTableRoom] })
export class LocksModule {}
