import { Controller, Get, Header, NotFoundException, Param, PayloadTooLargeException } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { WorktreeStore } from '../../store/worktree-store';
import { isUuid } from '../../../workflows/definitions';

@ApiTags('tasks')
@ApiBearerAuth()
@Controller('v1/tasks')
export class DiffsController {
  constructor(private readonly store: WorktreeStore) {}

  @Get(':id/diff')
  @Header('Content-Type', 'text/x-diff; charset=utf-8')
  @ApiOperation({ summary: 'The patch a task with a repository committed on its branch, from its start (git diff).' })
  @ApiResponse({ status: 404, description: 'No such task, or it has no commit (yet).' })
  @ApiResponse({ status: 413, description: 'The patch was too large to keep; the work is on the task’s branch.' })
  async diff(@Param('id') id: string): Promise<string> {
    const found = isUuid(id) ? await this.store.diff(id) : undefined;
    if (!found) throw new NotFoundException(`no diff for task ${id}`);
    if (found.patch === null) {
      throw new PayloadTooLargeException(
        `the patch of task ${id} was too large to keep: see its branch (git diff ${found.base_sha}..${found.sha})`,
      );
    }
    return found.patch;
  }
}
