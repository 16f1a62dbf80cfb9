import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { CreatePlanDto } from './dto/create-plan.dto';
import { PlanView } from './dto/plan.view';
import { CancelView } from '../tasks/dto/task.view';
import { PlansService } from './plans.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';
import { ApiJsonBody } from '../http/json-body-only';

@ApiTags('plans')
@ApiV1Access()
@Controller('v1/plans')
export class PlansController {
  constructor(private readonly plans: PlansService) {}

  @Post()
  @ApiOperation({
    summary:
      'Submit tasks with dependencies; the plan runs as the Temporal workflow plan-<id>, each task as task-<id>.',
  })
  @ApiJsonBody()
  @ApiCreatedResponse({
    type: PlanView,
    description: 'Plan and all its tasks stored, its workflow started: the plan as GET /v1/plans/:id shows it.',
  })
  @ApiOkResponse({
    type: PlanView,
    description:
      'The same plan was sent before with this idempotencyKey: the existing plan, nothing new stored. Its workflow is started now if it never was (its API stopped between storing and starting it) and the plan has not ended.',
  })
  @ApiResponse({
    status: 400,
    description:
      "Bad input: `fields` names each offending field of the first check that fails (the fields' form; then the graph and each task as POST /v1/tasks checks it, a cycle named in full once every key and dependsOn is sound); `tasks` for locks no repository's lock table could hold; `tasks.N.labels.plan` for a task's own label `plan`, reserved within a plan (each task is labelled with the plan's id).",
  })
  @ApiResponse({
    status: 500,
    description:
      'The plan is stored and runs, or will, but the request could not finish (Temporal could not say whether its start got through, or PostgreSQL failed around its start), or it may be stored (the answer to its commit was lost, and so was the look for it): the message names it; do not submit it again (before GET /v1/plans/:id answers 404, in the latter case).',
  })
  @ApiResponse({
    status: 422,
    description:
      'The idempotencyKey was first used for another plan: `fields` names `idempotencyKey`, the message the plan it created; nothing stored or started.',
  })
  @ApiResponse({
    status: 429,
    description:
      "A task's locks would take its repository's lock table past ATELIER_LOCK_TABLE_MAX_BYTES: nothing stored (with an idempotencyKey stored meanwhile by another request: a 200 repeat instead); `Retry-After` says when to submit again.",
  })
  @ApiResponse({
    status: 503,
    description:
      'Its workflow could not be started (Temporal unreachable): without an idempotencyKey nothing is left behind; with one the plan stays stored, and submitting the same key again starts it. Or PostgreSQL is unavailable (`database unavailable, try again`: without an idempotencyKey, only when the plan is certainly not stored). Retrying is safe.',
  })
  async create(@Body() dto: CreatePlanDto, @Res({ passthrough: true }) res: Response) {
    const { created, body } = await this.plans.create(dto);
    res.status(created ? 201 : 200);
    return body;
  }

  @Get(':id')
  @ApiOperation({ summary: "The plan's status and every task's." })
  @ApiOkResponse({ type: PlanView })
  @ApiResponse({ status: 404, description: 'No such plan.' })
  get(@Param('id') id: string) {
    return this.plans.get(id);
  }

  @Post(':id/cancel')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel the plan: running tasks are cancelled, the others never start.' })
  @ApiAcceptedResponse({
    type: CancelView,
    description: '`{"id", "status": "cancelling"}`, or `"cancelled"` if it already was.',
  })
  @ApiResponse({ status: 404, description: 'No such plan.' })
  @ApiResponse({
    status: 409,
    description:
      'The plan already ended, or its workflow is no longer running (a plan whose workflow closed in Temporal without recording its end, terminated or timed out there, is recorded failed, its tasks not started skipped).',
  })
  @ApiResponse({
    status: 503,
    description:
      'Not cancelled yet: Temporal could not be reached, another API process is starting the plan, PostgreSQL is unavailable (`database unavailable, try again`), or its workflow closed in Temporal while a task it started still runs there (Temporal terminates it a moment later; what ended is recorded meanwhile). A plan stored but never started may have been started meanwhile (a cancel starts it first, then cancels it). Cancelling again is safe.',
  })
  cancel(@Param('id') id: string) {
    return this.plans.cancel(id);
  }
}
