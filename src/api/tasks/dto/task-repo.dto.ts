import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import { StorableText } from '../../http/string-checks';
import { Optional } from '../../http/optional';

/** The git repository a task works on, in a worktree of its own on branch `atelier/<task id>`. */
export class TaskRepoDto {
  @ApiProperty({ description: 'Absolute path of a local git repository (on the agent workers).', example: '/srv/app' })
  @IsString()
  @Length(1, 4096)
  @Matches(/^\//, { message: 'path must be an absolute path' })
  @StorableText()
  path!: string;

  @ApiPropertyOptional({ description: 'Where the task branch starts: a branch, tag or commit; default HEAD.' })
  @Optional()
  @IsString()
  @Length(1, 250)
  @Matches(/^[^\s~^:?*[\\]+$/, { message: 'ref must be a git branch, tag or commit name' })
  @Matches(/^[^-]/, { message: 'ref must not start with "-"' })
  @StorableText()
  ref?: string;
}
