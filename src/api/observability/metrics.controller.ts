import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiLoopbackAccess } from '../auth/api-v1-access.decorator';
import type { Response } from 'express';
import { ApiMetrics } from './api-metrics.service';

@ApiTags('operations')
@ApiLoopbackAccess()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ApiMetrics) {}

  /** Prometheus exposition text; open without a token, like the health checks. */
  @Get()
  @ApiOperation({ summary: 'Prometheus metrics: tasks by status, submissions, queue backlogs, HTTP, process.' })
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    const { contentType, body } = await this.metrics.render();
    res.type(contentType);
    return body;
  }
}
