import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { RunsService } from './runs.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

@ApiTags('tasks')
@ApiV1Access()
@Controller('v1/tasks')
export class RunsController {
  constructor(private readonly runs: RunsService) {}

  @Post(':id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a finished task again: same workflow id and input, a new run.' })
  @ApiResponse({ status: 202, description: 'The new run was started; see `runs` in GET /v1/tasks/:id.' })
  @ApiResponse({
    status: 409,
    description:
      'The task has not finished yet or its workflow is still running (closing after its end was recorded; try again when it has closed), its plan skipped it and it depends on other tasks (it never ran: submit it again), or another retry or reset of it won a race. (A task whose run closed in Temporal without recording its end, terminated or timed out there, is not refused: it is recorded failed, class crash, and retried.)',
  })
  @ApiResponse({
    status: 503,
    description:
      'Temporal could not be reached or did not answer within 30 s, or 5 retries and resets were under way on this replica (`Retry-After: 5`); no run is recorded, and retrying is safe.',
  })
  @ApiResponse({ status: 404, description: 'No such task.' })
  retry(@Param('id') id: string) {
    return this.runs.retry(id);
  }

  @Post(':id/reset')
  @HttpCode(202)
  @ApiOperation({ summary: "Reset a failed task's workflow to just before its last failed step (a new run)." })
  @ApiResponse({ status: 202, description: 'The workflow was reset; the new run goes on from the failed step.' })
  @ApiResponse({
    status: 409,
    description:
      "The task has not failed, has no failed step to reset to, or ran with file locks or a git worktree (retry it instead); Temporal no longer keeps its history; or Temporal refused the reset (the message names Temporal's gRPC code, such as NOT_FOUND; Temporal's own error goes to the API's log).",
  })
  @ApiResponse({
    status: 503,
    description:
      'Temporal could not be reached or did not answer within 30 s, or 5 retries and resets were under way on this replica (`Retry-After: 5`); no run is recorded, and retrying is safe.',
  })
  @ApiResponse({ status: 404, description: 'No such task.' })
  reset(@Param('id') id: string) {
    return this.runs.reset(id);
  }
}
