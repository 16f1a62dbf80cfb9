import { Controller, Get, NotFoundException, Param, PayloadTooLargeException, StreamableFile } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { WorktreeStore } from '../../store/worktree-store';
import { isUuid } from '../../../workflows/definitions';
import { ApiV1Access } from '../auth/api-v1-access.decorator';

@ApiTags('tasks')
@ApiV1Access()
@Controller('v1/tasks')
export class DiffsController {
  constructor(private readonly store: WorktreeStore) {}

  @Get(':id/diff')
  @ApiProduces('text/x-diff')
  @ApiOperation({ summary: 'The patch a task with a repository committed on its branch, from its start (git diff).' })
  @ApiResponse({ status: 404, description: 'No such task, or it has no commit (yet).' })
  @ApiResponse({ status: 413, description: 'The patch was too large to keep; the work is on the task’s branch.' })
  async diff(@Param('id') id: string): Promise<StreamableFile> {
    const found = isUuid(id) ? await this.store.diff(id) : undefined;
    if (!found) throw new NotFoundException(`no diff for task ${id}`);
    if (found.patch === null) {
      throw new PayloadTooLargeException(
        `the patch of task ${id} was too large to keep: see its branch (git diff ${found.base_sha}..${found.sha})`,
      );
    }
    // Byte for byte as git printed it: a file that is not UTF-8 stays as it is, so no charset is claimed.
    return new StreamableFile(found.patch, { type: 'text/x-diff' });
  }
}
