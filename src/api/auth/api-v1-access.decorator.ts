import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';

/** The API description of what BearerTokenGuard answers on every route without tokens (docs/api.md#authentication). */
export const ApiLoopbackAccess = (): ClassDecorator & MethodDecorator =>
  ApiForbiddenResponse({
    description:
      'Without ATELIER_API_TOKENS: a call whose Host or Origin header names another machine (a web page of another site).',
  });

/** The API description of what BearerTokenGuard answers on every `/v1` route (docs/api.md#authentication). */
export const ApiV1Access = (): ClassDecorator & MethodDecorator =>
  applyDecorators(
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'With ATELIER_API_TOKENS set: no valid bearer token.' }),
    ApiLoopbackAccess(),
  );
