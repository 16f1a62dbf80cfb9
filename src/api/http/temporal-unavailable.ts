import { Logger, ServiceUnavailableException } from '@nestjs/common';

const logger = new Logger('Temporal');

/**
 * The 503 for a Temporal call that failed for a reason the client cannot fix (Temporal unreachable,
 * slow or overloaded). The answer says what could not be done and that trying again is safe; the cause
 * goes to the log only, since Temporal's and gRPC's error text names addresses, TLS details and the
 * server's internals.
 */
export function temporalUnavailable(what: string, err: unknown): ServiceUnavailableException {
  logger.warn(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  return new ServiceUnavailableException(`${what} now (the API's log says why); try again in a moment`);
}
