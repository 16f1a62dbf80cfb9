import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { LocksService } from '../../src/api/locks/locks.service';
import type { LockRequest, LockTable } from '../../workflows/definitions';

/** A client whose lock managers all answer `table` when asked theirs. */
const answering = (table: LockTable): Client =>
  ({
    withDeadline: <T>(_deadline: number, fn: () => Promise<T>) => fn(),
    workflow: { getHandle: () => ({ query: async () => table }) },
  }) as unknown as Client;

const request = (runId: string): LockRequest => ({
  requestId: `task-1/${runId}`,
  workflowId: 'task-1',
  runId,
  taskId: '1',
  globs: ['src/**'],
  since: 0,
});

describe('GET /v1/locks', () => {
  it('names the run of each holder and waiter: a terminated holder and its retry waiting for it differ by it', async () => {
    const repo = '/atelier-gone/app';
    const locks = new LocksService(answering({ repo, holders: [request('run-1')], waiters: [request('run-2')] }));
    const { holders, waiters } = await locks.list(repo);
    assert.deepEqual(
      [...holders, ...waiters].map((r) => [r.taskId, r.workflowId, r.runId]),
      [
        ['1', 'task-1', 'run-1'],
        ['1', 'task-1', 'run-2'],
      ],
    );
  });
});
