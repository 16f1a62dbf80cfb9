import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { LockTableFullException, LockTableRoom } from '../../src/api/locks/lock-table-room';
import { loadConfig } from '../../src/config/env';
import type { LockTableSize } from '../../workflows/definitions';

/** A client whose lock managers all answer `size` when asked theirs. */
const answering = (size: LockTableSize): Client =>
  ({
    connection: { withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn() },
    workflow: { getHandle: () => ({ query: async () => size }) },
  }) as unknown as Client;

const room = (size: LockTableSize) =>
  new LockTableRoom(answering(size), loadConfig({ ATELIER_LOCK_TABLE_MAX_BYTES: '10000' }));

const shortLock = [{ repo: '/srv/app', globs: ['README.md'] }];

describe('LockTableRoom', () => {
  it("counts a lock manager's holders and waiters, not the releases it remembers", async () => {
    // An idle repository: no task left, the releases of the last 110 carried beside the empty table.
    await room({ entries: 0, tableBytes: 0, carriedBytes: 10_476 }).ensureRoom(shortLock, 'locks');
    await assert.rejects(
      room({ entries: 30, tableBytes: 9_800, carriedBytes: 9_830 }).ensureRoom(shortLock, 'locks'),
      LockTableFullException,
    );
  });

  it('counts the whole payload of a manager from before it said its table apart (a rollout)', async () => {
    await assert.rejects(
      room({ entries: 0, carriedBytes: 10_476 }).ensureRoom(shortLock, 'locks'),
      LockTableFullException,
    );
    await room({ entries: 1, carriedBytes: 400 }).ensureRoom(shortLock, 'locks');
  });
});
