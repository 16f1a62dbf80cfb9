import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
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
  @ApiResponse({
    status: 200,
    description:
      "`repo`, `workflowId` (its lock manager's), `holders` and `waiters` (in order), each entry with `taskId`, `workflowId`, `runId` (the task's run that asked), `locks`, `since` and `links.task`; both lists empty for a repository nobody locked.",
  })
  @ApiResponse({ status: 400, description: '`repo` missing, not absolute, or longer than 994 bytes.' })
  @ApiResponse({
    status: 503,
    description: 'The lock manager did not answer within 5 s (its workflow worker is away).',
  })
  list(@Query() query: ListLocksQuery) {
    return this.locks.list(query.repo);
  }
}
