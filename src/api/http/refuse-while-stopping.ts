import { ServiceUnavailableException } from '@nestjs/common';
import type { Response } from 'express';

/** Seconds a client turned away while the API stops should wait: about a restart's time. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Refuses a new stream (the dashboard's, a log follower's) once the API has begun to stop: its open
 * streams were ended, and one opened now would never be, so the HTTP server's close would wait for it
 * for ever. The client gets 503 with `Retry-After`, and reconnects to this replica once it is back or
 * to another one.
 */
export function refuseWhileStopping(stopping: boolean, res: Response, what: string): void {
  if (!stopping) return;
  res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  throw new ServiceUnavailableException(`the API is stopping; ${what} again in a moment`);
}
