import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import type { AgentsFile } from '../config/agents-file';
import type { AtelierConfig } from '../config/env';
import { BearerTokenGuard } from './auth/bearer-token.guard';
import { HealthModule } from './health/health.module';
import { InfrastructureModule } from './infrastructure.module';
import { TasksModule } from './tasks/tasks.module';

@Module({})
export class AppModule {
  static forRoot(config: AtelierConfig, agents: AgentsFile, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: { logger, autoLogging: { ignore: (req) => req.url?.startsWith('/health') ?? false } },
        }),
        InfrastructureModule.forRoot(config, agents, (err) =>
          logger.warn({ error: err.message }, 'database client error'),
        ),
        HealthModule,
        TasksModule,
      ],
      providers: [{ provide: APP_GUARD, useClass: BearerTokenGuard }],
    };
  }
}
