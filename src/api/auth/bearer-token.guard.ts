import { createHash, timingSafeEqual } from 'node:crypto';
import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Request } from 'express';
import { assertApiAccess, isOpenOnLoopback } from '../../config/api-access';
import type { AtelierConfig } from '../../config/env';
import { CONFIG } from '../tokens';
import { foreignHeader } from '../../net/loopback-request';

/** Compared as digests, so that neither the contents nor the length of a token shows in the time taken. */
const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

/**
 * When `ATELIER_API_TOKENS` is set, every `/v1` call needs `Authorization: Bearer <token>` with one of
 * them. Health, metrics and docs stay open for probes. Without tokens `/v1` is open, so the API refuses
 * to start on a non-loopback HOST unless `ATELIER_API_AUTH=none` says so (assertApiAccess), and on
 * loopback every route refuses (403) a call a browser made for another site's page (foreignHeader): any
 * page could otherwise submit tasks to it, or read them, or its metrics and health (agents, spend,
 * queues), once its domain was re-pointed at 127.0.0.1. A local Prometheus or probe names a loopback Host.
 */
@Injectable()
export class BearerTokenGuard implements CanActivate, OnApplicationBootstrap {
  constructor(@Inject(CONFIG) private readonly config: AtelierConfig) {}

  /** Runs before the server listens (app.listen initialises first), so an open API never accepts a call. */
  onApplicationBootstrap(): void {
    assertApiAccess(this.config);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request>();
    if (isOpenOnLoopback(this.config)) {
      const foreign = foreignHeader(request.headers);
      if (foreign === undefined) return true;
      throw new ForbiddenException(
        `the ${foreign} header names another machine: without ATELIER_API_TOKENS the API answers only calls made ` +
          'to a loopback address (127.0.0.1, localhost, ::1) from this machine, never from a web page of another site',
      );
    }
    // Routes match whatever the case of the path (/V1/tasks is /v1/tasks), so must this test.
    if (!/^\/v1(\/|$)/i.test(request.path)) return true;
    const tokens = this.config.ATELIER_API_TOKENS;
    if (tokens.length === 0) return true;
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const presented = match?.[1];
    if (presented === undefined || !tokens.some((t) => sameSecret(t, presented))) {
      throw new UnauthorizedException('a valid bearer token is required');
    }
    return true;
  }
}
