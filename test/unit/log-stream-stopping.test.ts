import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceUnavailableException } from '@nestjs/common';
import type { Response } from 'express';
import type { Pool } from 'pg';
import { LogStreamService } from '../../src/api/logs/log-stream.service';
import type { TaskActivityListener } from '../../src/api/logs/task-activity-listener';

describe('following a task’s log while the API stops', () => {
  it('is turned away with 503 and Retry-After, reading and holding nothing', async () => {
    // Neither the database nor the listener may be asked: any use of them throws.
    const service = new LogStreamService({} as Pool, {} as TaskActivityListener);
    service.beforeApplicationShutdown();
    const headers = new Map<string, string>();
    const res = { setHeader: (name: string, value: string) => void headers.set(name, value) } as unknown as Response;
    await assert.rejects(service.follow('6b164171-0000-4000-8000-000000000000', {}, res), (err) => {
      assert.ok(err instanceof ServiceUnavailableException, String(err));
      return true;
    });
    assert.equal(headers.get('Retry-After'), '5');
    assert.equal(service.active, 0);
  });

  it('is turned away when the API begins to stop while its task is being read', async () => {
    const service = new LogStreamService({} as Pool, {} as TaskActivityListener);
    const store = (service as unknown as { store: { taskState: () => Promise<unknown> } }).store;
    store.taskState = async () => {
      service.beforeApplicationShutdown(); // the stop begins during the read
      return { status: 'running', currentRun: 1 };
    };
    const res = { setHeader: () => undefined } as unknown as Response;
    await assert.rejects(service.follow('6b164171-0000-4000-8000-000000000000', {}, res), ServiceUnavailableException);
    assert.equal(service.active, 0, 'no stream is left that nobody would end');
  });
});
