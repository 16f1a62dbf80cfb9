import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsInt,
  IsObject,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { PLAN_LIMITS, PLAN_ON_FAILURE, type PlanOnFailure } from '../../../../workflows/definitions';
import { integerRange } from '../../http/integer-range';
import { Optional } from '../../http/optional';
import { StorableText } from '../../http/string-checks';
import { CreateTaskDto } from '../../tasks/dto/create-task.dto';

const KEY_MAX_LENGTH = 100;
const KEY = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${KEY_MAX_LENGTH - 1}}$`);

/** A task of a plan: every field of a single task (but its idempotency key: the plan has one), a key and its dependencies. */
export class PlanTaskDto extends OmitType(CreateTaskDto, ['idempotencyKey'] as const) {
  @ApiProperty({
    description: 'Names the task within the plan; other tasks name it in dependsOn.',
    example: 'api',
    pattern: KEY.source,
    minLength: 1,
    maxLength: KEY_MAX_LENGTH,
  })
  @IsString()
  @Matches(KEY, {
    message: `key must be 1-${KEY_MAX_LENGTH} letters, digits, ".", "_" or "-", starting with a letter or digit`,
  })
  key!: string;

  @ApiPropertyOptional({
    description: 'Keys of tasks that must succeed before this one starts.',
    type: [String],
    example: ['schema'],
    maxItems: PLAN_LIMITS.tasks.max,
    uniqueItems: true,
    // Only strings are checked with the form; one that is no key is then refused as an unknown key.
    items: { type: 'string', pattern: KEY.source },
  })
  @Optional()
  @IsArray()
  @ArrayMaxSize(PLAN_LIMITS.tasks.max)
  @ArrayUnique({ message: 'dependsOn must not name a key twice' })
  @IsString({ each: true })
  dependsOn?: string[];
}

export class CreatePlanDto {
  @ApiProperty({ type: [PlanTaskDto], minItems: PLAN_LIMITS.tasks.min, maxItems: PLAN_LIMITS.tasks.max })
  @IsArray()
  @ArrayMinSize(PLAN_LIMITS.tasks.min)
  @ArrayMaxSize(PLAN_LIMITS.tasks.max)
  // ValidateNested alone would take an array in the array for a task, and validate its elements.
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => PlanTaskDto)
  tasks!: PlanTaskDto[];

  @ApiPropertyOptional({
    description: 'Tasks of the plan running at once; default 4.',
    ...integerRange(PLAN_LIMITS.maxParallel),
  })
  @Optional()
  @IsInt()
  @Min(PLAN_LIMITS.maxParallel.min)
  @Max(PLAN_LIMITS.maxParallel.max)
  maxParallel?: number;

  @ApiPropertyOptional({
    description:
      '`stop` (default): after a failure no other task starts. `continue`: only the failed task’s dependants are skipped.',
    enum: PLAN_ON_FAILURE,
  })
  @Optional()
  @IsIn(PLAN_ON_FAILURE)
  onFailure?: PlanOnFailure;

  @ApiPropertyOptional({
    description:
      'Submitting the same plan with the same key again returns the existing plan and stores nothing new; only a plan stored but never started (its API stopped in between) is started then. Another plan with the key is refused (422).',
    minLength: 1,
    maxLength: 200,
  })
  @Optional()
  @IsString()
  @Length(1, 200)
  @StorableText()
  idempotencyKey?: string;
}
