import { finished } from 'node:stream/promises';
import { Controller, Get, NotFoundException, Param, PayloadTooLargeException, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { WorktreeStore } from '../../store/worktree-store';
import { isUuid } from '../../../workflows/definitions';
import { ApiV1Access } from '../auth/api-v1-access.decorator';
import { ConcurrencyCap } from '../http/concurrency-cap';

/** A patch larger than this is held whole in memory while it is sent, so only one at a time is. */
const LARGE_PATCH_BYTES = 8 * 1024 * 1024;
/** When a caller turned away while another large patch is being sent tries again, in seconds. */
const LARGE_PATCH_RETRY_AFTER_SECONDS = 5;
/** A client that reads nothing of the patch this long has its connection cut (and frees its memory). */
const STALLED_CLIENT_MS = 60_000;

@ApiTags('tasks')
@ApiV1Access()
@Controller('v1/tasks')
export class DiffsController {
  /** Large patches being sent by this replica: each takes about three times its size in memory. */
  private readonly largePatches = new ConcurrencyCap(1, 'large patches', LARGE_PATCH_RETRY_AFTER_SECONDS);

  constructor(private readonly store: WorktreeStore) {}

  @Get(':id/diff')
  @ApiProduces('text/x-diff')
  @ApiOperation({ summary: 'The patch a task with a repository committed on its branch, from its start (git diff).' })
  @ApiResponse({ status: 404, description: 'No such task, or it has no commit (yet).' })
  @ApiResponse({ status: 413, description: 'The patch was too large to keep; the work is on the task’s branch.' })
  @ApiResponse({
    status: 503,
    description: 'Another patch over 8 MB is being sent by this replica; `Retry-After` says when to ask again.',
  })
  async diff(@Param('id') id: string, @Res() res: Response): Promise<void> {
    const found = isUuid(id) ? await this.store.diffInfo(id) : undefined;
    if (!found) throw new NotFoundException(`no diff for task ${id}`);
    if (found.bytes === null) {
      throw new PayloadTooLargeException(
        `the patch of task ${id} was too large to keep: see its branch (git diff ${found.base_sha}..${found.sha})`,
      );
    }
    /** Reads the patch and sends it; done once the answer is written or its client has gone. */
    const send = async (): Promise<void> => {
      const patch = await this.store.patch(id);
      if (patch === undefined) throw new NotFoundException(`no diff for task ${id}`); // deleted meanwhile
      if (res.destroyed) return; // its client left while it was read
      res.setTimeout(STALLED_CLIENT_MS, () => res.destroy());
      // Byte for byte as git printed it: a file that is not UTF-8 stays as it is, so no charset is claimed.
      res.status(200).setHeader('Content-Type', 'text/x-diff');
      res.end(patch);
      // Settles however the answer ends, its client gone before or during it too.
      await finished(res).catch(() => undefined);
    };
    await (found.bytes > LARGE_PATCH_BYTES ? this.largePatches.run(send) : send());
  }
}
