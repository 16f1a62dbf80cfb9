import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import { StorableText } from '../../http/string-checks';

export class ListLocksQuery {
  @ApiProperty({ description: "The repository: absolute path of the tasks' workdir.", example: '/srv/repos/app' })
  @IsString()
  @Length(1, 4096)
  @Matches(/^\//, { message: 'repo must be an absolute path' })
  @StorableText()
  repo!: string;
}
