import { ApiProperty } from '@nestjs/swagger';
import { IsByteLength, IsString, Matches } from 'class-validator';
import { StorableText } from '../../http/string-checks';
import { MAX_LOCKED_REPO_BYTES } from '../../../../workflows/definitions';

export class ListLocksQuery {
  @ApiProperty({ description: "The repository: absolute path of the tasks' workdir.", example: '/srv/repos/app' })
  @IsString()
  // A lock manager's workflow id holds the path: Temporal takes ids of up to 1000 bytes.
  @IsByteLength(1, MAX_LOCKED_REPO_BYTES, { message: `repo must be 1 to ${MAX_LOCKED_REPO_BYTES} bytes long` })
  @Matches(/^\//, { message: 'repo must be an absolute path' })
  @StorableText()
  repo!: string;
}
