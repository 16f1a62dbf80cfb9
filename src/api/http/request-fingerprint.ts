import { createHash } from 'node:crypto';
import { UnprocessableEntityException } from '@nestjs/common';
import { stringify } from 'safe-stable-stringify';

/**
 * The SHA-256 of a validated request body, its object keys in a canonical order: two requests with
 * the same fields and values have the same fingerprint, however their JSON was laid out.
 */
export const requestFingerprint = (body: object): string =>
  createHash('sha256')
    .update(stringify(body) ?? '')
    .digest('hex');

/**
 * Refuses the replay of an idempotency key with a request other than the one that first used it: a
 * 422 naming `idempotencyKey`, the first request's task or plan untouched. A row stored before
 * fingerprints were kept (`null`) replays whatever the request.
 */
export function refuseOtherRequest(
  stored: { id: string; request_sha256: string | null },
  fingerprint: string,
  what: 'task' | 'plan',
): void {
  if (stored.request_sha256 === null || stored.request_sha256 === fingerprint) return;
  const problem = `was first used for another request (${what} ${stored.id}); send that request again, or use a new key`;
  throw new UnprocessableEntityException({
    statusCode: 422,
    error: 'Unprocessable Entity',
    message: `idempotencyKey: ${problem}`,
    fields: [{ field: 'idempotencyKey', problems: [problem] }],
  });
}
