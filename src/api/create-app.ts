import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import type { AgentsFile } from '../config/agents-file';
import type { AtelierConfig } from '../config/env';
import { AppModule } from './app.module';
import { HttpErrorFilter } from './http/http-error.filter';
import { JsonBodyOnly } from './http/json-body-only';
import { rejectDeepJson, rejectForbiddenKeys } from './http/json-guards';
import { validationPipe } from './http/validation';
import { ApiMetrics } from './observability/api-metrics.service';
import { HttpMetricsMiddleware } from './observability/http-metrics.middleware';

/** A prompt may be 200,000 characters of 4-byte UTF-8, plus the rest of the body. */
const BODY_LIMIT = '1mb';

/** Builds the API application (not yet listening): validation, errors, OpenAPI at /docs. Its runner closes it. */
export async function createApp(
  config: AtelierConfig,
  agents: AgentsFile,
  logger: Logger,
): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, agents, logger), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(PinoNestLogger));
  // Before the body parser: a request it refuses (bad JSON, too large, too deep) is counted too.
  const httpMetrics = new HttpMetricsMiddleware(app.get(ApiMetrics));
  app.use((req: Request, res: Response, next: NextFunction) => httpMetrics.use(req, res, next));
  app.useBodyParser('json', { limit: BODY_LIMIT, strict: true, verify: rejectDeepJson, reviver: rejectForbiddenKeys });
  app.disable('x-powered-by');
  // Plain key=value parsing (repeated keys become arrays): no nested objects, nothing like __proto__[x].
  app.set('query parser', 'simple');
  app.useGlobalInterceptors(new JsonBodyOnly());
  app.useGlobalPipes(validationPipe());
  app.useGlobalFilters(new HttpErrorFilter(logger));
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Atelier')
      .setDescription('Durable orchestration of AI coding agents on Temporal')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}
