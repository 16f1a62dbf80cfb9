import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LogsModule } from '../logs/logs.module';
import { WorkersModule } from '../workers/workers.module';
import { ApiMetrics } from './api-metrics.service';
import { HttpMetricsMiddleware } from './http-metrics.middleware';
import { MetricsController } from './metrics.controller';
import { SubmissionsInterceptor } from './submissions.interceptor';

/** GET /metrics, HTTP and submission metrics. */
@Module({
  imports: [WorkersModule, LogsModule],
  controllers: [MetricsController],
  providers: [ApiMetrics, { provide: APP_INTERCEPTOR, useClass: SubmissionsInterceptor }],
  exports: [ApiMetrics],
})
export class ObservabilityModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}
