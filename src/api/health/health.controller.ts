import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiLoopbackAccess } from '../auth/api-v1-access.decorator';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DependencyHealth } from './dependency.health';

@ApiTags('health')
@ApiLoopbackAccess()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly deps: DependencyHealth,
  ) {}

  /** The process is up and serving HTTP. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /**
   * PostgreSQL and Temporal answer (503 otherwise): this replica can take submissions, cancels and
   * reads. `workers` says who serves each task queue, for information only: without workers, tasks
   * wait in their queue, and the API must stay reachable to submit, cancel and show them.
   */
  @Get('ready')
  @HealthCheck()
  async ready() {
    const workers = Promise.all([this.deps.workers('workflow'), this.deps.workers('agent')]).then(
      ([workflow, agent]) => ({ workflow, agent }),
    );
    try {
      const result = await this.health.check([() => this.deps.postgres(), () => this.deps.temporal()]);
      return { ...result, workers: await workers };
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      throw new ServiceUnavailableException({ ...(err.getResponse() as object), workers: await workers });
    }
  }
}
