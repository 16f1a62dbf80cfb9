import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ListWorkersQuery } from './dto/list-workers.query';
import { WorkersService } from './workers.service';

@ApiTags('workers')
@ApiBearerAuth()
@Controller('v1/workers')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  @Get()
  @ApiOperation({
    summary: 'Every worker (identity, queues, last poll, slots, running tasks, counts) and each queue backlog.',
  })
  list(@Query() query: ListWorkersQuery) {
    return this.workers.list(query.all ?? false);
  }
}
