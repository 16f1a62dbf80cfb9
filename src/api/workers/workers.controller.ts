import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ListWorkersQuery } from './dto/list-workers.query';
import { WorkersService } from './workers.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

@ApiTags('workers')
@ApiV1Access()
@Controller('v1/workers')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  @Get()
  @ApiOperation({
    summary: 'Every worker (identity, queues, last poll, slots, running tasks, counts) and each queue backlog.',
  })
  @ApiResponse({ status: 400, description: 'A query parameter other than `all`, or `all` not true, false, 1 or 0.' })
  list(@Query() query: ListWorkersQuery) {
    return this.workers.list(query.all ?? false);
  }
}
