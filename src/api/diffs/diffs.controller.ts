import { Controller, Get, Header, NotFoundException, Param } from '@nestjs/common';
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
  async diff(@Param('id') id: string): Promise<string> {
    const found = isUuid(id) ? await this.store.diff(id) : undefined;
    if (!found) throw new NotFoundException(`no diff for task ${id}`);
    return found.patch;
  }
}
