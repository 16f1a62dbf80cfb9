import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';

/** An attempt number as the query names it: 1 to 999, no sign, no leading 0. */
const ATTEMPT = /^[1-9]\d{0,2}$/;

export class TaskLogsQuery {
  @ApiPropertyOptional({
    description: 'Only this attempt: its number, 1 to 999, in decimal digits without a leading 0.',
    type: String,
    pattern: ATTEMPT.source,
    example: '2',
  })
  @IsOptional()
  @Matches(ATTEMPT, { message: 'attempt must be an integer from 1 to 999' })
  attempt?: string;

  @ApiPropertyOptional({
    enum: ['1', 'true', '0', 'false'],
    description:
      'Stream as Server-Sent Events until the run ends (with ?attempt=N, until that attempt does); resume with Last-Event-ID.',
  })
  @IsOptional()
  @IsIn(['1', 'true', '0', 'false'], { message: 'follow must be 1, true, 0 or false' })
  follow?: string;
}
