import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { loggedRequest } from './observability/logged-request';
import type { Logger } from 'pino';
import type { AgentsFile } from '../config/agents-file';
import type { AtelierConfig } from '../config/env';
import { AgentsModule } from './agents/agents.module';
import { BearerTokenGuard } from './auth/bearer-token.guard';
import { BudgetModule } from './budget/budget.module';
import { ClosedRunsModule } from './closed-runs/closed-runs.module';
import { HealthModule } from './health/health.module';
import { InfrastructureModule } from './infrastructure.module';
import { ObservabilityModule } from './observability/observability.module';
import { taskLogFields } from './observability/task-log-fields';
import { DashboardModule } from './dashboard/dashboard.module';
import { DiffsModule } from './diffs/diffs.module';
import { LocksModule } from './locks/locks.module';
import { PlansModule } from './plans/plans.module';
import { RunsModule } from './runs/runs.module';
import { StrandedModule } from './stranded/stranded.module';
import { TasksModule } from './tasks/tasks.module';
import { WorkersModule } from './workers/workers.module';

@Module({})
export class AppModule {
  static forRoot(config: AtelierConfig, agents: AgentsFile, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            logger,
            // Probes and scrapes come every few seconds: their log lines would drown the rest.
            autoLogging: { ignore: (req) => /^\/(health|metrics)(\/|\?|$)/.test(req.url ?? '') },
            customProps: taskLogFields,
            serializers: { req: loggedRequest },
          },
        }),
        InfrastructureModule.forRoot(config, agents, (err) =>
          logger.warn({ error: err.message }, 'database client error'),
        ),
        HealthModule,
        TasksModule,
        AgentsModule,
        BudgetModule,
        RunsModule,
        PlansModule,
        LocksModule,
        DiffsModule,
        DashboardModule,
        WorkersModule,
        ObservabilityModule,
        StrandedModule,
        ClosedRunsModule,
      ],
      providers: [{ provide: APP_GUARD, useClass: BearerTokenGuard }],
    };
  }
}
