import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import { StorableText } from '../../http/string-checks';
import { Optional } from '../../http/optional';

/** Characters a git branch, tag or commit name may hold here. */
const REF_NAME = /^[^\s~^:?*[\\]+$/;
/** A ref beginning with `-` would be read as an option. */
const NO_LEADING_DASH = /^[^-]/;

/** The git repository a task works on, in a worktree of its own on branch `atelier/<task id>`. */
export class TaskRepoDto {
  @ApiProperty({
    description: 'Absolute path of a local git repository (on the agent workers).',
    example: '/srv/app',
    minLength: 1,
    maxLength: 4096,
    pattern: '^/',
  })
  @IsString()
  @Length(1, 4096)
  @Matches(/^\//, { message: 'path must be an absolute path' })
  @StorableText()
  path!: string;

  @ApiPropertyOptional({
    description: 'Where the task branch starts: a branch, tag or commit; default HEAD.',
    minLength: 1,
    maxLength: 250,
    // Both checks below in one pattern.
    pattern: `(?=${NO_LEADING_DASH.source})${REF_NAME.source}`,
  })
  @Optional()
  @IsString()
  @Length(1, 250)
  @Matches(REF_NAME, { message: 'ref must be a git branch, tag or commit name' })
  @Matches(NO_LEADING_DASH, { message: 'ref must not start with "-"' })
  @StorableText()
  ref?: string;
}
