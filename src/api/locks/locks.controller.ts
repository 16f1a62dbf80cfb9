import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ListLocksQuery } from './dto/list-locks.query';
import { LocksService } from './locks.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

@ApiTags('locks')
@ApiV1Access()
@Controller('v1/locks')
export class LocksController {
  constructor(private readonly locks: LocksService) {}

  @Get()
  @ApiOperation({ summary: "A repository's file locks: the tasks holding them and those waiting, in order." })
  list(@Query() query: ListLocksQuery) {
    return this.locks.list(query.repo);
  }
}
