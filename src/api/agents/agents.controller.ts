import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AgentListView, BreakerResetView } from './dto/agent.view';
import { AgentsService } from './agents.service';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

@ApiTags('agents')
@ApiV1Access()
@Controller('v1/agents')
export class AgentsController {
  constructor(private readonly agents: AgentsService) {}

  @Get()
  @ApiOperation({
    summary:
      'Each agent profile: its circuit breaker (closed, open until T, half_open), recent success rate, running count against its limit, spend today.',
  })
  @ApiOkResponse({ type: AgentListView, description: 'The default agent, and every profile by name.' })
  list() {
    return this.agents.list();
  }

  @Post(':name/breaker/reset')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "Close the agent's circuit breaker by hand (its provider is back, its key replaced): its failures and any probe are forgotten, and tasks waiting for it ask again now.",
  })
  @ApiOkResponse({ type: BreakerResetView, description: 'The agent as GET /v1/agents lists it, and `woken`.' })
  @ApiResponse({ status: 404, description: 'No agent of that name in the agents file.' })
  resetBreaker(@Param('name') name: string) {
    return this.agents.resetBreaker(name);
  }
}
