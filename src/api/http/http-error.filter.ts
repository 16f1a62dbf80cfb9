import type { IncomingMessage } from 'node:http';
import { ArgumentsHost, Catch, HttpException, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { taskLogFields } from '../observability/task-log-fields';
import { isQueryTimeout } from '../../db/bounded-query';
import { isTransientDbError } from '../../db/transient';

interface ClientError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
  /** The body parser's limit in bytes, on a body too large. */
  limit?: number;
}

/** What a client is told of its own error: its message, and the limit a body too large went over. */
function clientErrorMessage(error: ClientError): string {
  const message = error.expose !== false && error.message ? error.message : 'bad request';
  if (error.type !== 'entity.too.large' || typeof error.limit !== 'number') return message;
  return `${message}: a body may be at most ${error.limit} bytes`;
}

/**
 * Every error becomes a JSON answer. Errors raised by the HTTP layer for what a client sent (bad JSON,
 * a body too large, a bad encoding) keep their 4xx status; anything else is a 500 whose details stay in
 * the log, never in the response.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    // The error body is JSON even where the route declared another type (the logs are text/plain).
    response.type('application/json');
    if (error instanceof HttpException) {
      const body = error.getResponse();
      // A refusal that lifts by itself (a full lock table) says when to try again.
      const { retryAfterSeconds } = error as { retryAfterSeconds?: unknown };
      if (typeof retryAfterSeconds === 'number') response.setHeader('Retry-After', String(retryAfterSeconds));
      response
        .status(error.getStatus())
        .json(typeof body === 'string' ? { statusCode: error.getStatus(), message: body } : body);
      return;
    }
    const clientError = error as ClientError;
    const status = clientError?.status ?? clientError?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      response.status(status).json({
        statusCode: status,
        error: clientError.type ?? 'client error',
        message: clientErrorMessage(clientError),
      });
      return;
    }
    if (isTransientDbError(error) || isQueryTimeout(error)) {
      // The database is restarting, unreachable or silent (a bounded read's time ran out): the client may
      // simply try again.
      response.status(HttpStatus.SERVICE_UNAVAILABLE).json({
        statusCode: HttpStatus.SERVICE_UNAVAILABLE,
        error: 'Service Unavailable',
        message: 'database unavailable, try again',
      });
      return;
    }
    // The task the request was about, if any, so the error can be found from the task.
    const ids = taskLogFields(host.switchToHttp().getRequest<IncomingMessage>(), response);
    this.logger.error({ err: error, ...ids }, 'unhandled error');
    response
      .status(HttpStatus.INTERNAL_SERVER_ERROR)
      .json({ statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: 'internal error' });
  }
}
