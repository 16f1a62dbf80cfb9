import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ApiMetrics } from './api-metrics.service';

/**
 * Counts and times every HTTP answer by its route pattern (`/v1/tasks/:id`, never the raw path, so
 * ids do not multiply series). Event streams are counted, not timed: they last as long as a task.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: ApiMetrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const route =
        (req.route as { path?: string } | undefined)?.path ?? (res.statusCode === 404 ? 'unmatched' : 'other');
      const method = req.method;
      this.metrics.httpRequests.inc({ method, route, status: String(res.statusCode) });
      if (!String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) {
        this.metrics.httpDuration.observe({ method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    });
    next();
  }
}
