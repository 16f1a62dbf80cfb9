import { Module } from '@nestjs/common';
import { DashboardController } from './dashboard.controller';
import { DashboardService } from './dashboard.service';

/** The live dashboard at `/` and its data: `GET /v1/dashboard` and `GET /v1/dashboard/stream` (SSE). */
@Module({ controllers: [DashboardController], providers: [DashboardService] })
export class DashboardModule {}
