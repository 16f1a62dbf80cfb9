import { join } from 'node:path';
import { Controller, Get, NotFoundException, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { DASHBOARD_ASSETS, assetsDir } from './dashboard-assets';
import { DashboardService } from './dashboard.service';
import { SnapshotStreamWriter } from './snapshot-stream-writer';
import { refuseWhileStopping } from '../http/refuse-while-stopping';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

/** The page may talk to this API only; links into the Temporal Web UI are plain navigation. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** A comment this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

/**
 * The dashboard: the page at `/` (open, like /docs: it holds no data) and its data under /v1, which the
 * bearer-token guard protects like every /v1 route.
 */
@ApiTags('dashboard')
@Controller()
export class DashboardController {
  constructor(private readonly dashboard: DashboardService) {}

  @Get()
  @ApiExcludeEndpoint()
  page(@Res() res: Response): void {
    this.sendAsset('index.html', res);
  }

  @Get('dashboard/:asset')
  @ApiExcludeEndpoint()
  asset(@Param('asset') asset: string, @Res() res: Response): void {
    this.sendAsset(asset, res);
  }

  @Get('v1/dashboard')
  @ApiV1Access()
  @ApiOperation({ summary: 'One snapshot of queues, workers, running tasks, failures and the last hour.' })
  @ApiOkResponse({
    description:
      'The snapshot: `generatedAt`, `cursor`, `counts`, `queues`, `workers`, `running`, `recent`, `failures`, `series` and `temporalUi` (docs/api.md, GET /v1/dashboard).',
  })
  snapshot() {
    return this.dashboard.current();
  }

  @Get('v1/dashboard/stream')
  @ApiV1Access()
  @ApiProduces('text/event-stream')
  @ApiOperation({
    summary:
      'Server-Sent Events: a `snapshot` event at once, then whenever a task event is written and at least every 5 s.',
  })
  @ApiResponse({ status: 503, description: 'The API is stopping; `Retry-After` says when to connect again.' })
  stream(@Req() req: Request, @Res() res: Response): void {
    refuseWhileStopping(this.dashboard.stopping, res, 'connect');
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const writer = new SnapshotStreamWriter(res);
    writer.writeIfRoom('retry: 2000\n\n');
    const unsubscribe = this.dashboard.subscribe((snapshot) => writer.snapshot(snapshot));
    const keepalive = setInterval(() => writer.writeIfRoom(': keep-alive\n\n'), KEEPALIVE_MS);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      unsubscribe();
      release();
      res.end();
    };
    // The server's shutdown waits for open connections: end the stream when the API stops.
    const release = this.dashboard.onShutdown(close);
    req.once('close', close);
  }

  private sendAsset(name: string, res: Response): void {
    // Own keys only: "constructor" or "__proto__" name no file.
    const type = Object.hasOwn(DASHBOARD_ASSETS, name) ? DASHBOARD_ASSETS[name] : undefined;
    if (!type) throw new NotFoundException(`no dashboard file ${name}`);
    res.setHeader('Content-Type', type);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.sendFile(join(assetsDir(), name));
  }
}
