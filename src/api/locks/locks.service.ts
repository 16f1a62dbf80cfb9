import { Inject, Injectable } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  LOCK_TABLE_QUERY,
  MAX_LOCKED_REPO_BYTES,
  workflowIdForLocks,
  type LockRequest,
  type LockTable,
} from '../../../workflows/definitions';
import { temporalUnavailable } from '../http/temporal-unavailable';
import { TEMPORAL_CLIENT } from '../tokens';
import { lockedRepo } from './lock-input';

/** How long the lock manager may take to answer: its workflow worker may be away. */
const QUERY_DEADLINE_MS = 5000;

/**
 * A holder or waiter. With its run: a terminated holder not yet taken back and its retry's new run,
 * waiting for it, are the same task and workflow.
 */
const view = (r: LockRequest) => ({
  taskId: r.taskId,
  workflowId: r.workflowId,
  runId: r.runId,
  locks: r.globs,
  since: r.since === undefined ? null : new Date(r.since).toISOString(),
  links: { task: `/v1/tasks/${r.taskId}` },
});

@Injectable()
export class LocksService {
  constructor(@Inject(TEMPORAL_CLIENT) private readonly temporal: Client) {}

  /** Holders and waiters of a repository's locks, as its lock manager workflow holds them right now. */
  async list(repo: string) {
    // As tasks name it: a repository that is gone may still have a lock manager under that name.
    const path = lockedRepo(repo);
    let table: LockTable = { repo: path, holders: [], waiters: [] };
    // A real path too long for a workflow id has no lock manager: no task may lock there (lockProblems).
    if (Buffer.byteLength(path) > MAX_LOCKED_REPO_BYTES) return this.answer(path, table);
    try {
      table = await this.temporal.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
        this.temporal.workflow.getHandle(workflowIdForLocks(path)).query<LockTable>(LOCK_TABLE_QUERY),
      );
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) {
        throw temporalUnavailable('could not ask the lock manager', err);
      }
      // No task ever asked for locks in this repository: the table stays empty.
    }
    return this.answer(path, table);
  }

  private answer(path: string, table: LockTable) {
    return {
      repo: path,
      workflowId: workflowIdForLocks(path),
      holders: table.holders.map(view),
      waiters: table.waiters.map(view),
    };
  }
}
