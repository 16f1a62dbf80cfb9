import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LogsModule } from '../logs/logs.module';
import { WorkersModule } from '../workers/workers.module';
import { ApiMetrics } from './api-metrics.service';
import { MetricsController } from './metrics.controller';
import { SubmissionsInterceptor } from './submissions.interceptor';

/** GET /metrics, HTTP and submission metrics (createApp counts every request with HttpMetricsMiddleware). */
@Module({
  imports: [WorkersModule, LogsModule],
  controllers: [MetricsController],
  providers: [ApiMetrics, { provide: APP_INTERCEPTOR, useClass: SubmissionsInterceptor }],
  exports: [ApiMetrics],
})
export class ObservabilityModule {}
