import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DashboardController } from '../../src/api/dashboard/dashboard.controller';
import type { DashboardService } from '../../src/api/dashboard/dashboard.service';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';

/** A response whose client reads nothing: write() answers false (buffer full) until the test says otherwise. */
class UnreadResponse extends EventEmitter {
  readonly chunks: string[] = [];
  readonly headers = new Map<string, string>();
  accepting = false;
  status(): this {
    return this;
  }
  setHeader(name: string, value: string): void {
    this.headers.set(name.toLowerCase(), value);
  }
  flushHeaders(): void {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return this.accepting;
  }
  end(): void {}
  /** The `id:` of each snapshot event written, in order. */
  snapshotIds(): string[] {
    return this.chunks.flatMap((c) => (c.includes('event: snapshot') ? [/^id: (.*)$/m.exec(c)?.[1] ?? ''] : []));
  }
}

/** The feed as the controller sees it: the test sends the snapshots. */
class FeedStub {
  listener: ((snapshot: DashboardSnapshot) => void) | undefined;
  stopping = false;
  subscribe(listener: (snapshot: DashboardSnapshot) => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  onShutdown(): () => void {
    return () => undefined;
  }
  send(cursor: number): void {
    this.listener?.({ cursor: String(cursor) } as DashboardSnapshot);
  }
}

describe('the dashboard stream to a client that stops reading', () => {
  it('holds snapshots back while write() answers false, and sends only the newest on drain', () => {
    const feed = new FeedStub();
    const req = new EventEmitter();
    const res = new UnreadResponse();
    new DashboardController(feed as unknown as DashboardService).stream(
      req as unknown as Request,
      res as unknown as Response,
    );
    try {
      // The buffer is full from the first write on, and never drains: nothing more piles up in it.
      for (let cursor = 1; cursor <= 1000; cursor += 1) feed.send(cursor);
      assert.deepEqual(res.snapshotIds(), []);
      assert.equal(res.chunks.length, 1, 'only the retry hint was written');

      res.accepting = true;
      res.emit('drain');
      assert.deepEqual(res.snapshotIds(), ['1000'], 'the newest snapshot, once the client reads again');
      feed.send(1001);
      assert.deepEqual(res.snapshotIds(), ['1000', '1001'], 'then each snapshot as it comes');
    } finally {
      req.emit('close');
    }
    assert.equal(feed.listener, undefined, 'closing the request unsubscribes');
  });
});

describe('the dashboard stream while the API stops', () => {
  it('answers 503 with Retry-After, writing and subscribing nothing', () => {
    const feed = new FeedStub();
    feed.stopping = true;
    const req = new EventEmitter();
    const res = new UnreadResponse();
    try {
      assert.throws(
        () =>
          new DashboardController(feed as unknown as DashboardService).stream(
            req as unknown as Request,
            res as unknown as Response,
          ),
        ServiceUnavailableException,
      );
      assert.equal(res.headers.get('retry-after'), '5');
      assert.equal(res.headers.get('content-type'), undefined, 'no stream was begun');
      assert.deepEqual(res.chunks, []);
      assert.equal(feed.listener, undefined, 'the feed was not started again');
    } finally {
      // Were a stream begun after all, its keep-alive timer would hold this test's process open.
      req.emit('close');
    }
  });
});

describe('the dashboard files', () => {
  it('answers 404 for names that are not its own files, such as inherited properties', () => {
    const sent: string[] = [];
    const res = { setHeader: () => undefined, sendFile: (path: string) => sent.push(path) };
    const controller = new DashboardController({} as DashboardService);
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'missing.js']) {
      assert.throws(() => controller.asset(name, res as unknown as Response), NotFoundException, name);
    }
    assert.deepEqual(sent, []);
    controller.asset('dashboard.js', res as unknown as Response);
    assert.equal(sent.length, 1);
  });
});
