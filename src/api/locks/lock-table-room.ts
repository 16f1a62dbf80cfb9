import { HttpException, HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AtelierConfig } from '../../config/env';
import {
  LOCK_TABLE_SIZE_QUERY,
  workflowIdForLocks,
  type LockTableSize,
  type TaskLocks,
} from '../../../workflows/definitions';
import { badFields } from '../http/validation';
import { CONFIG, TEMPORAL_CLIENT } from '../tokens';

/** How long a client refused for a full lock table is asked to wait before it submits again. */
const RETRY_AFTER_SECONDS = 30;
/**
 * How long the API waits for a lock manager to tell its size. Past it (its workflow worker is away or
 * swamped) the task is accepted: starting it does not need that worker.
 */
const SIZE_DEADLINE_MS = 2000;
/** What one task adds to a lock table beside its globs (its ids and time, as JSON), rounded up. */
const ENTRY_OVERHEAD_BYTES = 300;

/** A 429 for locks a repository's lock table has no room for; `Retry-After` says when to try again. */
export class LockTableFullException extends HttpException {
  readonly retryAfterSeconds = RETRY_AFTER_SECONDS;

  constructor(repo: string, entries: number) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        error: 'Too Many Requests',
        message: `the lock table of repository ${repo} is full (${entries} tasks hold or wait for locks there): submit again once some have ended`,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Runs `ensureRoom`; when it finds a lock table full, answers instead the submission stored meanwhile
 * under the same idempotency key, if any (a concurrent request with that key stored it, its locks maybe
 * taking the room this one was refused for), for the caller to answer as a repeat: a 429 says nothing
 * was stored, which that key's submission was. Undefined when there was room.
 */
export async function roomOrRepeat<T>(
  ensureRoom: () => Promise<void>,
  idempotencyKey: string | undefined,
  byIdempotencyKey: (key: string) => Promise<T | undefined>,
): Promise<T | undefined> {
  try {
    await ensureRoom();
    return undefined;
  } catch (err) {
    const repeat =
      err instanceof LockTableFullException && idempotencyKey !== undefined
        ? await byIdempotencyKey(idempotencyKey)
        : undefined;
    if (repeat === undefined) throw err;
    return repeat;
  }
}

/**
 * Keeps each repository's lock table (its holders and waiters) within ATELIER_LOCK_TABLE_MAX_BYTES. Its
 * lock manager carries the table over `continueAsNew` as one payload, which Temporal refuses past 2 MB:
 * a manager whose table grew past that could never continue, and every task locking in that repository
 * would wait for ever. So a submission whose locks would take a table past the limit is refused, before
 * anything is stored. The releases the manager remembers travel in that payload too, but are not
 * counted: at most 2,000 of some 95 bytes (190 KB), they are trimmed only as new releases come, so an
 * idle repository's would keep the room they take for good. The limit (at most 1,500,000) leaves room
 * for them, and for tasks started without a submission (a retry, a plan's), which are not counted here.
 */
@Injectable()
export class LockTableRoom {
  private readonly logger = new Logger('Locks');

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(CONFIG) private readonly config: AtelierConfig,
  ) {}

  /**
   * Refuses the tasks' locks when they would not fit their repositories' tables now (429), or ever, even
   * in an empty table (400 naming `field`). `atOnce`: how many of the tasks can be in a table together
   * (a plan's `maxParallel`: its tasks ask for their locks when they start); the largest count.
   */
  async ensureRoom(tasks: (TaskLocks | undefined)[], field: string, atOnce = tasks.length): Promise<void> {
    const sizes = new Map<string, number[]>();
    for (const locks of tasks) {
      if (locks === undefined) continue;
      const bytes = ENTRY_OVERHEAD_BYTES + Buffer.byteLength(JSON.stringify(locks.globs));
      const repoSizes = sizes.get(locks.repo) ?? [];
      repoSizes.push(bytes);
      sizes.set(locks.repo, repoSizes);
    }
    const max = this.config.ATELIER_LOCK_TABLE_MAX_BYTES;
    const wanted = [...sizes].map(([repo, all]) => {
      const bytes = all
        .sort((a, b) => b - a)
        .slice(0, atOnce)
        .reduce((sum, b) => sum + b, 0);
      return { repo, bytes };
    });
    // An empty table counts 0 bytes (LockTableSize.tableBytes): locks within `max` fit there, in time.
    const never = wanted.filter((w) => w.bytes > max);
    if (never.length > 0) {
      throw badFields([
        {
          field,
          problems: never.map(
            (w) =>
              `locks take ${w.bytes} bytes of the lock table of ${w.repo}, which holds at most ${max} (ATELIER_LOCK_TABLE_MAX_BYTES)`,
          ),
        },
      ]);
    }
    await Promise.all(
      wanted.map(async ({ repo, bytes }) => {
        const size = await this.sizeOf(repo);
        if (size === undefined) return;
        // A manager on a worker from before `tableBytes` (during a rollout) counts its releases too.
        if ((size.tableBytes ?? size.carriedBytes) + bytes > max) throw new LockTableFullException(repo, size.entries);
      }),
    );
  }

  /**
   * The size of the repository's lock table; undefined when it has no lock manager, or it did not say
   * (in time, or at all: a manager on a worker of a version without the question, during a rollout).
   */
  private async sizeOf(repo: string): Promise<LockTableSize | undefined> {
    try {
      return await this.temporal.connection.withDeadline(Date.now() + SIZE_DEADLINE_MS, () =>
        this.temporal.workflow.getHandle(workflowIdForLocks(repo)).query<LockTableSize>(LOCK_TABLE_SIZE_QUERY),
      );
    } catch (err) {
      // No task ever asked for locks there: the table is empty.
      if (err instanceof WorkflowNotFoundError) return undefined;
      this.logger.warn(
        `could not ask the lock manager of ${repo} for its size; the task is accepted: ${err instanceof Error ? err.message : String(err)}`,
      );
      return undefined;
    }
  }
}
