import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { BudgetService } from './budget.service';
import { PutBudgetDto } from './dto/put-budget.dto';
import { PutTaskBudgetDto } from './dto/put-task-budget.dto';
import { BudgetView, TaskBudgetView } from './dto/budget.view';
import { ApiV1Access } from '../auth/api-v1-access.decorator';
import { ApiJsonBody } from '../http/json-body-only';

@ApiTags('budget')
@ApiV1Access()
@Controller('v1')
export class BudgetController {
  constructor(private readonly budget: BudgetService) {}

  @Get('budget')
  @ApiOperation({ summary: "The global daily cap (USD per UTC day), today's spend and when the day turns." })
  @ApiOkResponse({ type: BudgetView })
  get() {
    return this.budget.get();
  }

  @Put('budget')
  @ApiOperation({
    summary:
      "Sets the global daily cap; at the cap no new attempt starts, and tasks wait until it is raised above today's spend (or lifted) or the day turns. Only such a change wakes the waiting tasks.",
  })
  @ApiJsonBody()
  @ApiOkResponse({ type: BudgetView, description: 'The budget as GET answers it.' })
  @ApiResponse({
    status: 400,
    description:
      '`dailyUsd` missing, not a number, below 0, over 99,999,999.999999 or with more than 6 decimal places (null: no cap).',
  })
  put(@Body() dto: PutBudgetDto) {
    return this.budget.putDaily(dto.dailyUsd);
  }

  @Put('tasks/:id/budget')
  @ApiOperation({
    summary:
      "Sets a task's cost cap; a task waiting for its budget resumes when it is raised above what it has spent (or lifted), and only such a change wakes it.",
  })
  @ApiJsonBody()
  @ApiResponse({
    status: 400,
    description:
      '`budgetUsd` missing, not a number, below 0, over 1,000,000 or with more than 6 decimal places (null: no cap).',
  })
  @ApiOkResponse({ type: TaskBudgetView })
  @ApiResponse({ status: 404, description: 'No such task.' })
  @ApiResponse({
    status: 409,
    description:
      'The task has ended (succeeded, failed or cancelled; the message names which): its budget is left as it was.',
  })
  putTask(@Param('id') id: string, @Body() dto: PutTaskBudgetDto) {
    return this.budget.putTask(id, dto.budgetUsd);
  }
}
