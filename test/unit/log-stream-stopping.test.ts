import { EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServiceUnavailableException } from '@nestjs/common';
import type { Response } from 'express';
import type { Pool } from 'pg';
import { LogStreamService } from '../../src/api/logs/log-stream.service';
import type { TaskActivityListener } from '../../src/api/logs/task-activity-listener';
import { loadConfig } from '../../src/config/env';
import { waitFor } from '../support/wait-for';

const config = loadConfig({});

describe('following a task’s log while the API stops, or has its most followers', () => {
  it('is turned away with 503 and Retry-After, reading and holding nothing', async () => {
    // Neither the database nor the listener may be asked: any use of them throws.
    const service = new LogStreamService({} as Pool, config, {} as TaskActivityListener);
    await service.beforeApplicationShutdown();
    const headers = new Map<string, string>();
    const res = { setHeader: (name: string, value: string) => void headers.set(name, value) } as unknown as Response;
    await assert.rejects(service.follow('6b164171-0000-4000-8000-000000000000', {}, res), (err) => {
      assert.ok(err instanceof ServiceUnavailableException, String(err));
      return true;
    });
    assert.equal(headers.get('Retry-After'), '5');
    assert.equal(service.active, 0);
    // So is a download of the plain log: begun after the open ones were given their grace, it would
    // hold the server open.
    await assert.rejects(service.text('6b164171-0000-4000-8000-000000000000', undefined, res), (err) => {
      assert.ok(err instanceof ServiceUnavailableException, String(err));
      return true;
    });
  });

  it('is turned away when the API begins to stop while its task is being read', async () => {
    const service = new LogStreamService({} as Pool, config, {} as TaskActivityListener);
    const store = (service as unknown as { store: { taskState: () => Promise<unknown> } }).store;
    store.taskState = async () => {
      await service.beforeApplicationShutdown(); // the stop begins during the read
      return { status: 'running', currentRun: 1 };
    };
    const res = { setHeader: () => undefined } as unknown as Response;
    await assert.rejects(service.follow('6b164171-0000-4000-8000-000000000000', {}, res), ServiceUnavailableException);
    assert.equal(service.active, 0, 'no stream is left that nobody would end');
  });

  it('turns away one follower more than ATELIER_LOG_FOLLOWERS_MAX with 503 and Retry-After', async () => {
    const service = new LogStreamService({} as Pool, loadConfig({ ATELIER_LOG_FOLLOWERS_MAX: '2' }), {
      listening: true,
      nextActivity: () => ({ wait: new Promise(() => undefined), cancel: () => undefined }),
    } as unknown as TaskActivityListener);
    const store = (service as unknown as { store: Record<string, () => Promise<unknown>> }).store;
    store.taskState = async () => ({ status: 'running', currentRun: 1 });
    store.chunksAfter = async () => ({ chunks: [], more: false });
    const headers = new Map<string, string>();
    // An answer, which closes when its client leaves (or the API cuts it).
    const answer = (): Response & EventEmitter =>
      Object.assign(new EventEmitter(), {
        destroyed: false,
        status: () => undefined,
        setHeader: (name: string, value: string) => void headers.set(name, value),
        flushHeaders: () => undefined,
      }) as unknown as Response & EventEmitter;
    const id = '6b164171-0000-4000-8000-000000000000';
    const answers = [answer(), answer()];
    const open = [await service.follow(id, {}, answers[0]!), await service.follow(id, {}, answers[1]!)];
    assert.equal(service.active, 2);
    await assert.rejects(service.follow(id, {}, answer()), (err) => {
      assert.ok(err instanceof ServiceUnavailableException, String(err));
      assert.match(err.message, /has 2 log followers already \(ATELIER_LOG_FOLLOWERS_MAX\)/);
      return true;
    });
    assert.equal(headers.get('Retry-After'), '10');
    assert.equal(service.active, 2, 'the one turned away holds nothing');
    for (const [i, stream] of open.entries()) {
      stream.getStream().destroy();
      answers[i]?.emit('close');
    }
    await waitFor('the closed streams to be let go', () => service.active === 0);
    const last = answer();
    await service.follow(id, {}, last).then((s) => s.getStream().destroy());
    last.emit('close');
  });

  it('turns away one plain download more than ATELIER_LOG_DOWNLOADS_MAX with 503 and Retry-After', async () => {
    const service = new LogStreamService(
      {} as Pool,
      loadConfig({ ATELIER_LOG_DOWNLOADS_MAX: '2' }),
      {} as TaskActivityListener,
    );
    const store = (service as unknown as { store: Record<string, () => Promise<unknown>> }).store;
    let reads = 0;
    store.taskState = async () => {
      reads += 1;
      return { status: 'running', currentRun: 1 };
    };
    store.chunksAfter = async () => ({ chunks: [], more: false });
    const headers = new Map<string, string>();
    /** A response whose client has not read it all yet; `close()` ends it. */
    const download = () => {
      const closed: (() => void)[] = [];
      const res = {
        destroyed: false,
        once: (event: string, listener: () => void) => void (event === 'close' && closed.push(listener)),
        setHeader: (name: string, value: string) => void headers.set(name, value),
      } as unknown as Response;
      return { res, close: () => closed.forEach((listener) => listener()) };
    };
    const id = '6b164171-0000-4000-8000-000000000000';
    const open = [download(), download()];
    for (const { res } of open) await service.text(id, undefined, res);
    assert.equal(reads, 2);
    await assert.rejects(service.text(id, undefined, download().res), (err) => {
      assert.ok(err instanceof ServiceUnavailableException, String(err));
      assert.match(err.message, /has 2 log downloads under way already \(ATELIER_LOG_DOWNLOADS_MAX\)/);
      return true;
    });
    assert.equal(headers.get('Retry-After'), '10');
    assert.equal(reads, 2, 'the one turned away read nothing');
    open[0]?.close();
    await service.text(id, undefined, download().res);
    assert.equal(reads, 3, 'a download that ended makes room for the next');
  });
});
