import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsInt,
  IsNumber,
  IsObject,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { LIMITS, LOCK_LIMITS, MAX_CHAIN_LENGTH } from '../../../../workflows/definitions';
import { integerRange } from '../../http/integer-range';
import { IsStringRecord, StorableText } from '../../http/string-checks';
import { MaxDecimalPlaces } from '../../http/decimal-places';
import { Optional } from '../../http/optional';
import { TaskRepoDto } from './task-repo.dto';

/** A task's labels: at most this many entries, each key 1 to `length` characters and each value at most `length`. */
const LABELS = { entries: 50, length: 200 } as const;

export class CreateTaskDto {
  @ApiProperty({
    description: 'What the agent is asked to do. Passed as data, never through a shell.',
    minLength: 1,
    maxLength: 200_000,
  })
  @IsString()
  @Length(1, 200_000)
  @StorableText()
  prompt!: string;

  @ApiPropertyOptional({
    description: 'Agent profile name from the agents file; defaults to its defaultAgent.',
    minLength: 1,
    maxLength: 100,
  })
  @Optional()
  @IsString()
  @Length(1, 100)
  agent?: string;

  @ApiPropertyOptional({
    description: "Model passed as {model}; defaults to the profile's model. Never begins with `-`.",
    minLength: 1,
    maxLength: 200,
    pattern: '^[^-]',
  })
  @Optional()
  @IsString()
  @Length(1, 200)
  @Matches(/^[^-]/, { message: 'model must not begin with "-": the agent would read it as an option' })
  @StorableText()
  model?: string;

  @ApiPropertyOptional({
    description: 'Absolute path of an existing directory the agent runs in.',
    minLength: 1,
    maxLength: 4096,
    pattern: '^/',
  })
  @Optional()
  @IsString()
  @Length(1, 4096)
  @Matches(/^\//, { message: 'workdir must be an absolute path' })
  @StorableText()
  workdir?: string;

  @ApiPropertyOptional({
    description: "Per-attempt time limit; defaults to the profile's.",
    ...integerRange(LIMITS.timeoutSeconds),
  })
  @Optional()
  @IsInt()
  @Min(LIMITS.timeoutSeconds.min)
  @Max(LIMITS.timeoutSeconds.max)
  timeoutSeconds?: number;

  @ApiPropertyOptional({
    description: "Attempts before the task fails; defaults to the profile's.",
    ...integerRange(LIMITS.maxAttempts),
  })
  @Optional()
  @IsInt()
  @Min(LIMITS.maxAttempts.min)
  @Max(LIMITS.maxAttempts.max)
  maxAttempts?: number;

  @ApiPropertyOptional({ description: '1 is the highest; default 3.', ...integerRange(LIMITS.priority) })
  @Optional()
  @IsInt()
  @Min(LIMITS.priority.min)
  @Max(LIMITS.priority.max)
  priority?: number;

  @ApiPropertyOptional({
    description:
      'Free-form string labels to filter by: up to 50, keys 1 to 200 characters, values up to 200. The keys constructor, prototype and __proto__ are refused (400 naming `labels.<key>`), as anywhere in a body.',
    type: 'object',
    maxProperties: LABELS.entries,
    // OpenAPI 3.0 has no propertyNames: the keys' length is in the description only.
    additionalProperties: { type: 'string', maxLength: LABELS.length },
  })
  @Optional()
  @IsStringRecord(LABELS.entries, LABELS.length)
  labels?: Record<string, string>;

  @ApiPropertyOptional({
    description:
      'Submitting the same request with the same key again returns the existing task and stores nothing new; only a task stored but never started (its API stopped in between) is started then. Another request with the key is refused (422).',
    minLength: 1,
    maxLength: 200,
  })
  @Optional()
  @IsString()
  @Length(1, 200)
  @StorableText()
  idempotencyKey?: string;

  @ApiPropertyOptional({
    description:
      "The fallback chain: agent profiles tried in order, the next one when the last fails for good. Defaults to `agent` followed by its profile's `fallback`. When `agent` is given too, it must come first.",
    type: [String],
    minItems: 1,
    maxItems: MAX_CHAIN_LENGTH,
    items: { type: 'string', minLength: 1, maxLength: 100 },
    example: ['claude-opus', 'codex', 'ollama-qwen'],
  })
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CHAIN_LENGTH)
  @ArrayUnique({ message: 'agents must not name an agent twice' })
  @IsString({ each: true })
  @Length(1, 100, { each: true })
  agents?: string[];

  @ApiPropertyOptional({
    description: 'Cost cap of the task in USD: no attempt starts once its attempts have cost this much.',
    minimum: 0,
    maximum: 1_000_000,
  })
  @Optional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @MaxDecimalPlaces(6)
  @Min(0)
  @Max(1_000_000)
  budgetUsd?: number;

  @ApiPropertyOptional({
    description:
      'Files the task will touch: globs relative to its repository (`repo.path`, else its workdir). Tasks whose lock sets can overlap never run their agents at the same time; all of a task’s locks are taken at once.',
    type: [String],
    maxItems: LOCK_LIMITS.globs,
    items: { type: 'string', minLength: 1, maxLength: LOCK_LIMITS.globLength },
    example: ['src/api/**', 'README.md'],
  })
  @Optional()
  @IsArray()
  @ArrayMaxSize(LOCK_LIMITS.globs)
  @IsString({ each: true })
  @Length(1, LOCK_LIMITS.globLength, { each: true })
  @StorableText({ each: true })
  locks?: string[];

  @ApiPropertyOptional({
    description:
      'A local git repository: the agent runs in a worktree of its own on branch `atelier/<task id>` (from `ref`), its changes are committed there, and the worktree is removed at the end (the branch stays). Not with `workdir`.',
    type: TaskRepoDto,
  })
  @Optional()
  // ValidateNested alone would take an array for the object, and validate its elements.
  @IsObject()
  @ValidateNested()
  @Type(() => TaskRepoDto)
  repo?: TaskRepoDto;

  @ApiPropertyOptional({
    description:
      'With `repo` and `locks`: fail the task (class `lock_violation`) when it changes files outside its locks; its work stays committed on its branch. Unset: the agent profile’s `failOnLockViolations`, else false (violations are only reported).',
  })
  @Optional()
  @IsBoolean()
  failOnLockViolations?: boolean;
}
