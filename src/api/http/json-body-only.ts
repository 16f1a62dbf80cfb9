import {
  UnsupportedMediaTypeException,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ApiUnsupportedMediaTypeResponse } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Observable } from 'rxjs';

/** The only body type the API reads (its body parser's). */
export const JSON_TYPE = 'application/json';

/** Whether the request carries a body with something in it (a chunked one is taken to). */
const hasContent = (req: Request): boolean =>
  Number(req.headers['content-length']) > 0 || req.headers['transfer-encoding'] !== undefined;

/** Whether the route's handler takes the body (a `@Body()` parameter). */
const takesBody = (context: ExecutionContext): boolean => {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), context.getHandler().name) ??
    {}) as Record<string, unknown>;
  return Object.keys(args).some((key) => key.split(':')[0] === String(RouteParamtypes.BODY));
};

/**
 * Only JSON bodies are parsed: another body would reach a route as no body at all, and be refused for
 * its first missing field (`prompt: prompt must be a string` for a form-encoded submission, curl's
 * default). A route that takes a body answers such a request 415 naming Content-Type instead. Routes
 * without a body, and requests without one (or an empty one), are left alone.
 */
export class JsonBodyOnly implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    if (hasContent(req) && req.is(JSON_TYPE) !== JSON_TYPE && takesBody(context)) {
      // What was sent, in the answer: cut short, it is the client's own text.
      const sent = req.headers['content-type']?.slice(0, 100);
      throw new UnsupportedMediaTypeException(
        `Content-Type must be ${JSON_TYPE}: the body was sent ${sent ? `as ${sent}` : 'without one'}, and only JSON is read`,
      );
    }
    return next.handle();
  }
}

/** The API description of JsonBodyOnly's answer, and of the body parser's for another charset. */
export const ApiJsonBody = (): MethodDecorator =>
  ApiUnsupportedMediaTypeResponse({
    description: `A body whose Content-Type is not ${JSON_TYPE} (or none), or JSON in a charset other than UTF-8.`,
  });
