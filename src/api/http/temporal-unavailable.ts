import { Logger, ServiceUnavailableException } from '@nestjs/common';

const logger = new Logger('Temporal');

/**
 * The 503 for a Temporal call that failed for a reason the client cannot fix (Temporal unreachable,
 * slow or overloaded). The answer says what could not be done and that trying again is safe; the cause
 * goes to the log only, since Temporal's and gRPC's error text names addresses, TLS details and the
 * server's internals.
 */
export function temporalUnavailable(what: string, err: unknown): ServiceUnavailableException {
  logCause(what, err);
  return new ServiceUnavailableException(`${what} now (the API's log says why); try again in a moment`);
}

/**
 * For a Temporal read whose failure an answer reports in a field (a queue's `error`): logs the cause,
 * as temporalUnavailable does, and gives the fixed text to show in its place.
 */
export function temporalUnavailableText(what: string, err: unknown): string {
  logCause(what, err);
  return "Temporal unavailable (the API's log says why)";
}

function logCause(what: string, err: unknown): void {
  logger.warn(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}
