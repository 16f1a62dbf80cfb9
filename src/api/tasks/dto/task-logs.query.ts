import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';

export class TaskLogsQuery {
  @ApiPropertyOptional({ description: 'Only this attempt (1 to 999).', type: Number, example: 2 })
  @IsOptional()
  @Matches(/^[1-9]\d{0,2}$/, { message: 'attempt must be an integer from 1 to 999' })
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
