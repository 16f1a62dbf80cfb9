import { ApiProperty } from '@nestjs/swagger';
import { IsNumber, Max, Min, ValidateIf } from 'class-validator';
import { MaxDecimalPlaces } from '../../http/decimal-places';

export class PutBudgetDto {
  @ApiProperty({
    description: 'Cap on the spend of all tasks per UTC day, in USD; null for no cap.',
    type: Number,
    nullable: true,
    minimum: 0,
    maximum: 1_000_000_000,
  })
  @ValidateIf((o: PutBudgetDto) => o.dailyUsd !== null)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @MaxDecimalPlaces(6)
  @Min(0)
  @Max(1_000_000_000)
  dailyUsd!: number | null;
}
