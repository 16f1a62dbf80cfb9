import { Module } from '@nestjs/common';
import { LocksController } from './locks.controller';
import { LocksService } from './locks.service';

/** File locks: `GET /v1/locks?repo=` reads a repository's lock manager workflow. */
@Module({ controllers: [LocksController], providers: [LocksService] })
export class LocksModule {}
