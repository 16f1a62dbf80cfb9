import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AgentsService } from './agents.service';

@ApiTags('agents')
@ApiBearerAuth()
@Controller('v1/agents')
export class AgentsController {
  constructor(private readonly agents: AgentsService) {}

  @Get()
  @ApiOperation({
    summary:
      'Each agent profile: its circuit breaker (closed, open until T, half_open), recent success rate, running count against its limit, spend today.',
  })
  list() {
    return this.agents.list();
  }
}
