import { ApiProperty } from '@nestjs/swagger';
import { OUTPUT_FORMATS } from '../../../config/agents-file';

/** An agent's circuit breaker as `GET /v1/agents` shows it, for the API description. */
export class AgentBreakerView {
  @ApiProperty({ enum: ['closed', 'open', 'half_open'] })
  state!: string;

  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Until when it is open; null unless open.',
  })
  openUntil!: string | null;

  @ApiProperty({ description: 'Breaker-class failures in the current window.' })
  failures!: number;

  @ApiProperty()
  failureThreshold!: number;

  @ApiProperty()
  windowSeconds!: number;

  @ApiProperty()
  cooldownSeconds!: number;
}

export class SuccessRateView {
  @ApiProperty({ example: '1h' })
  window!: string;

  @ApiProperty({ description: 'Attempts finished in the window, cancelled ones aside.' })
  finished!: number;

  @ApiProperty()
  succeeded!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'succeeded / finished; null without any.' })
  rate!: number | null;
}

/** One agent profile of the agents file with its live state. */
export class AgentView {
  @ApiProperty()
  name!: string;

  @ApiProperty({ enum: OUTPUT_FORMATS, description: "The profile's output format (its parser)." })
  output!: string;

  @ApiProperty({ type: String, nullable: true })
  model!: string | null;

  @ApiProperty({ type: [String], description: 'Its default fallback chain.' })
  fallback!: string[];

  @ApiProperty({ type: () => AgentBreakerView })
  breaker!: AgentBreakerView;

  @ApiProperty({ description: 'Its attempts running now, on any agent worker.' })
  running!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'null: no limit.' })
  maxConcurrent!: number | null;

  @ApiProperty()
  startsLastMinute!: number;

  @ApiProperty({ type: Number, nullable: true, description: 'null: no limit.' })
  startsPerMinute!: number | null;

  @ApiProperty({ type: () => SuccessRateView })
  successRate!: SuccessRateView;

  @ApiProperty({ description: 'What its attempts cost since midnight UTC, in USD.' })
  spendTodayUsd!: number;
}

/** The answer of `GET /v1/agents`. */
export class AgentListView {
  @ApiProperty()
  defaultAgent!: string;

  @ApiProperty({ type: () => [AgentView] })
  items!: AgentView[];
}

/** The answer of `POST /v1/agents/:name/breaker/reset`. */
export class BreakerResetView extends AgentView {
  @ApiProperty({
    description:
      'The tasks whose wake Temporal took within 5 s; the others ask again at their next recheck (docs/api.md).',
  })
  woken!: number;
}
