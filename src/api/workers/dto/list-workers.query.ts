import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional } from 'class-validator';

export class ListWorkersQuery {
  @ApiPropertyOptional({
    description: 'Also list workers that stopped or went silent more than five minutes ago (kept for a day).',
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value,
  )
  @IsBoolean({ message: 'all must be true or false' })
  all?: boolean;
}
