import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ApiMetrics } from './api-metrics.service';

/** The status counted for a request whose client went away before the answer was complete (nginx's). */
const CLIENT_CLOSED = '499';

/**
 * Counts and times every HTTP answer by its route pattern (`/v1/tasks/:id`, never the raw path, so
 * ids do not multiply series; `unmatched` for a 404 no route took, `other` for what no route saw, such
 * as a body the parser refused). A request counts once: when its answer is complete ('finish'), or when
 * its connection closes first ('close'), as 499: a stream the client closed, an answer it gave up on.
 * Only complete answers are timed, and event streams are not: they last as long as their reader.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: ApiMetrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const started = process.hrtime.bigint();
    let counted = false;
    const count = (): void => {
      if (counted) return;
      counted = true;
      // A catch-all pattern ('/{*path}') is a middleware's (the request logger's), not a route of ours.
      const pattern = (req.route as { path?: string } | undefined)?.path;
      const route =
        pattern !== undefined && !pattern.includes('{*') ? pattern : res.statusCode === 404 ? 'unmatched' : 'other';
      const method = req.method;
      const finished = res.writableFinished;
      this.metrics.httpRequests.inc({ method, route, status: finished ? String(res.statusCode) : CLIENT_CLOSED });
      if (finished && !String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) {
        this.metrics.httpDuration.observe({ method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    };
    res.once('finish', count);
    res.once('close', count);
    next();
  }
}
