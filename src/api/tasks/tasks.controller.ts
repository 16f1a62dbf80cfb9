import { Body, Controller, Get, Header, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { LogStreamService } from '../logs/log-stream.service';
import { CreateTaskDto } from './dto/create-task.dto';
import { ListTasksQuery } from './dto/list-tasks.query';
import { TaskLogsQuery } from './dto/task-logs.query';
import { CancelView, SubmittedTaskView, TaskListView, TaskView } from './dto/task.view';
import { TasksService } from './tasks.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';
import { ApiJsonBody } from '../http/json-body-only';

@ApiTags('tasks')
@ApiV1Access()
@Controller('v1/tasks')
export class TasksController {
  constructor(
    private readonly tasks: TasksService,
    private readonly logStream: LogStreamService,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Submit an agent task; it runs as the Temporal workflow task-<id>.' })
  @ApiJsonBody()
  @ApiCreatedResponse({ type: SubmittedTaskView, description: 'Task created and its workflow started.' })
  @ApiOkResponse({
    type: SubmittedTaskView,
    description:
      'The same request was sent before with this idempotencyKey: the existing task, nothing new stored. Its workflow is started now if it never was (its API stopped between storing and starting it).',
  })
  @ApiResponse({
    status: 400,
    description:
      "Bad input; `fields` names each offending field (`locks` for locks no repository's lock table could hold).",
  })
  @ApiResponse({
    status: 422,
    description:
      'The idempotencyKey was first used for another request: `fields` names `idempotencyKey`, the message the task it created; nothing stored or started.',
  })
  @ApiResponse({
    status: 429,
    description:
      "Its locks would take its repository's lock table past ATELIER_LOCK_TABLE_MAX_BYTES: nothing stored (with an idempotencyKey stored meanwhile by another request: a 200 repeat instead); `Retry-After` says when to submit again.",
  })
  @ApiResponse({
    status: 503,
    description:
      'Temporal could not be reached to start its workflow (without an idempotencyKey nothing is kept; with one the task stays stored, and sending the same key again starts it), or PostgreSQL is unavailable (`database unavailable, try again`: without an idempotencyKey, only when the task is certainly not stored). Retrying is safe.',
  })
  @ApiResponse({
    status: 500,
    description:
      'The task is stored and runs, or will, but the request could not finish (Temporal could not say whether its start got through, or PostgreSQL failed around its start), or it may be stored (the answer to its insert was lost, and so was the look for it): the message names it; do not submit it again (before GET /v1/tasks/:id answers 404, in the latter case).',
  })
  async create(@Body() dto: CreateTaskDto, @Res({ passthrough: true }) res: Response) {
    const { created, body } = await this.tasks.create(dto);
    res.status(created ? 201 : 200);
    return body;
  }

  @Get()
  @ApiOperation({ summary: 'List tasks, newest first, with keyset pagination.' })
  @ApiOkResponse({ type: TaskListView, description: 'A page of tasks, and the cursor of the next.' })
  @ApiResponse({ status: 400, description: 'Bad query (a label key named twice, a cursor this API did not return).' })
  list(@Query() query: ListTasksQuery) {
    return this.tasks.list(query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A task with its attempts, result and error.' })
  @ApiOkResponse({ type: TaskView, description: 'The task, its current run and every run.' })
  @ApiResponse({ status: 404, description: 'No such task.' })
  get(@Param('id') id: string) {
    return this.tasks.get(id);
  }

  @Post(':id/cancel')
  @HttpCode(202)
  @ApiOperation({ summary: "Cancel a task: its agent's process group is killed, status becomes cancelled." })
  @ApiAcceptedResponse({
    type: CancelView,
    description:
      '`{"id", "status": "cancelling"}`: cancellation requested; poll GET /v1/tasks/:id until it is cancelled. `"cancelled"` if it already was.',
  })
  @ApiResponse({
    status: 409,
    description:
      'The task already succeeded or failed, or its workflow is no longer running (a run that closed in Temporal without recording its end, terminated or timed out there, is recorded failed, class crash).',
  })
  @ApiResponse({ status: 404, description: 'No such task.' })
  @ApiResponse({
    status: 503,
    description:
      'Not cancelled yet: Temporal could not be reached, another API process is starting the task, or PostgreSQL is unavailable (`database unavailable, try again`). A task stored but never started may have been started meanwhile (a cancel starts it first, then cancels it). Cancelling again is safe.',
  })
  cancel(@Param('id') id: string) {
    return this.tasks.cancel(id);
  }

  @Get(':id/logs')
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @ApiOperation({
    summary:
      "The agent's stdout and stderr so far, as text; ?attempt=N for one attempt; ?follow=1 streams them as Server-Sent Events.",
  })
  @ApiResponse({
    status: 200,
    description:
      'The output as text; with follow, a stream of `log` events (id `run.attempt.seq`), then `end` or `error`.',
    content: { 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'With follow: the id of the last event received; the stream resumes after it.',
  })
  @ApiResponse({
    status: 400,
    description:
      'A bad attempt (an integer from 1 to 999) or follow value, another query parameter, or a Last-Event-ID this stream never sent; `fields` names it.',
  })
  @ApiResponse({ status: 404, description: 'No such task (before any stream starts).' })
  @ApiResponse({
    status: 503,
    description:
      'While the API stops, or with ATELIER_LOG_FOLLOWERS_MAX followers (following) or ATELIER_LOG_DOWNLOADS_MAX plain logs being sent (not following) on this replica already; `Retry-After` says when to ask again.',
  })
  logs(
    @Param('id') id: string,
    @Res({ passthrough: true }) res: Response,
    @Query() { attempt, follow }: TaskLogsQuery,
    // Named as @ApiHeader names it, so the API description lists the header once (Nest reads it in lower case).
    @Headers('Last-Event-ID') lastEventId?: string,
  ) {
    const attemptNumber = attempt === undefined ? undefined : Number(attempt);
    if (follow === '1' || follow === 'true') {
      return this.logStream.follow(id, { attempt: attemptNumber, lastEventId }, res);
    }
    return this.logStream.text(id, attemptNumber, res);
  }
}
