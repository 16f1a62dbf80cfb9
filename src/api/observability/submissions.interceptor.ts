import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { catchError, tap, throwError, type Observable } from 'rxjs';
import type { AgentsFile } from '../../config/agents-file';
import { AGENTS } from '../tokens';
import { ApiMetrics } from './api-metrics.service';
import { TASK_ID_LOCAL } from './task-log-fields';

/** A submission's agent fields, as sent: not yet known to be valid. */
interface ChainFields {
  agent?: unknown;
  agents?: unknown;
}

/**
 * Observes task submissions (POST /v1/tasks) without touching the tasks feature: counts them by agent
 * and outcome, and hands the created task's id to the request's log line.
 */
@Injectable()
export class SubmissionsInterceptor implements NestInterceptor {
  constructor(
    private readonly metrics: ApiMetrics,
    @Inject(AGENTS) private readonly agents: AgentsFile,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    if (req.method !== 'POST' || (req.route as { path?: string } | undefined)?.path !== '/v1/tasks')
      return next.handle();
    const res = http.getResponse<Response>();
    return next.handle().pipe(
      tap((body: unknown) => {
        const id = (body as { id?: unknown } | undefined)?.id;
        if (typeof id === 'string') res.locals[TASK_ID_LOCAL] = id;
        const agent = this.headAgent(req.body as ChainFields | undefined);
        this.metrics.submissions.inc({ agent, outcome: res.statusCode === 200 ? 'replayed' : 'created' });
      }),
      catchError((err: unknown) => {
        const status = (err as { getStatus?: () => number; status?: number }).getStatus?.() ?? 500;
        this.metrics.submissions.inc({ agent: '', outcome: status >= 400 && status < 500 ? 'rejected' : 'error' });
        return throwError(() => err);
      }),
    );
  }

  /**
   * The agent the task starts with: `agent`, else the head of the `agents` chain, else the default one
   * (as resolveChain does). A replay (its idempotency key seen before) answers before its fields are
   * checked: a name the agents file does not hold counts as `unknown`, so that clients cannot mint series.
   */
  private headAgent(body: ChainFields | undefined): string {
    const head: unknown =
      typeof body?.agent === 'string'
        ? body.agent
        : Array.isArray(body?.agents)
          ? body.agents[0]
          : this.agents.defaultAgent;
    return typeof head === 'string' && Object.hasOwn(this.agents.agents, head) ? head : 'unknown';
  }
}
