import { ApiProperty } from '@nestjs/swagger';
import { IsNumber, Max, Min, ValidateIf } from 'class-validator';
import { MaxDecimalPlaces } from '../../http/decimal-places';

/** The largest amount `budget.daily_usd` (numeric(14, 6)) holds: a larger cap would fail its write. */
const MAX_DAILY_USD = 99_999_999.999999;

export class PutBudgetDto {
  @ApiProperty({
    description: 'Cap on the spend of all tasks per UTC day, in USD; null for no cap.',
    type: Number,
    nullable: true,
    minimum: 0,
    maximum: MAX_DAILY_USD,
  })
  @ValidateIf((o: PutBudgetDto) => o.dailyUsd !== null)
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @MaxDecimalPlaces(6)
  @Min(0)
  @Max(MAX_DAILY_USD)
  dailyUsd!: number | null;
}
