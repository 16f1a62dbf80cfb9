import { timingSafeEqual } from 'node:crypto';
import {
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Request } from 'express';
import { assertApiAccess } from '../../config/api-access';
import type { AtelierConfig } from '../../config/env';
import { CONFIG } from '../tokens';

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * When `ATELIER_API_TOKENS` is set, every `/v1` call needs `Authorization: Bearer <token>` with one of
 * them. Health, metrics and docs stay open for probes. Without tokens `/v1` is open, so the API refuses
 * to start on a non-loopback HOST unless `ATELIER_API_AUTH=none` says so (assertApiAccess).
 */
@Injectable()
export class BearerTokenGuard implements CanActivate, OnApplicationBootstrap {
  constructor(@Inject(CONFIG) private readonly config: AtelierConfig) {}

  /** Runs before the server listens (app.listen initialises first), so an open API never accepts a call. */
  onApplicationBootstrap(): void {
    assertApiAccess(this.config);
  }

  canActivate(context: ExecutionContext): boolean {
    const tokens = this.config.ATELIER_API_TOKENS;
    if (tokens.length === 0) return true;
    const request = context.switchToHttp().getRequest<Request>();
    // Routes match whatever the case of the path (/V1/tasks is /v1/tasks), so must this test.
    if (!/^\/v1(\/|$)/i.test(request.path)) return true;
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const presented = match?.[1];
    if (presented === undefined || !tokens.some((t) => sameSecret(t, presented))) {
      throw new UnauthorizedException('a valid bearer token is required');
    }
    return true;
  }
}
