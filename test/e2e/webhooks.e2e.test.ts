import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { verifySignature, verifyTimestamped } from '../../src/notifications/signing';
import { call, submit, waitForEnd } from '../support/http-api';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';
import { startStack, type Stack } from '../support/stack';
import { waitFor } from '../support/wait-for';

const SECRET = 'webhook-test-secret-5b1f';

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: { id: string; type: string; occurredAt: string; data: Record<string, unknown> };
  answered: number;
}

/** A webhook receiver on 127.0.0.1 that records every request; `failFirst` answers 500 to the first N of each delivery. */
class Receiver {
  readonly received: Received[] = [];
  failFirst = 0;
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => {
        const body = JSON.parse(raw) as Received['body'];
        const seen = this.received.filter((r) => r.body.id === body.id).length;
        const answered = seen < this.failFirst ? 500 : 200;
        this.received.push({ headers: req.headers, raw, body, answered });
        res.writeHead(answered).end();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  of(type: string, match: (data: Record<string, unknown>) => boolean): Received[] {
    return this.received.filter((r) => r.body.type === type && match(r.body.data));
  }
}

interface NotificationRow {
  id: string;
  attempts: number;
  delivered_at: Date | null;
  last_error: string | null;
}

/**
 * Webhook notifications end to end: the whole service with ATELIER_WEBHOOK_URLS pointing at a local
 * receiver. Its own database: the dispatcher delivers every due row of a database, and the daily
 * budget is global to one.
 */
describe('webhook notifications', { timeout: 180_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;
  let stack: Stack;
  const receiver = new Receiver();

  before(async () => {
    db = await createScratchDatabase('webhooks');
    pool = new Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => undefined);
    const url = await receiver.listen();
    stack = await startStack({
      DATABASE_URL: db.url,
      ATELIER_WAIT_RECHECK_SECONDS: '0.2',
      ATELIER_WEBHOOK_URLS: url,
      ATELIER_WEBHOOK_SECRET: SECRET,
    });
  });
  after(async () => {
    await stack?.stop();
    await receiver.close();
    await pool?.end();
    await db?.drop();
  });

  const row = async (id: string): Promise<NotificationRow | undefined> =>
    (
      await pool.query<NotificationRow>(
        'SELECT id, attempts, delivered_at, last_error FROM notifications WHERE id = $1',
        [id],
      )
    ).rows[0];
  const deliveredRow = (id: string): Promise<NotificationRow> =>
    waitFor(`notification ${id} to be marked delivered`, async () => {
      const r = await row(id);
      return r?.delivered_at ? r : undefined;
    });
  const countOf = async (type: string, key: string): Promise<number> =>
    (
      await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM notifications WHERE type = $1 AND dedupe_key LIKE $2',
        [type, `${key}%`],
      )
    ).rows[0]?.n ?? -1;

  it('delivers one signed task.failed when a task fails', async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@exit 3', maxAttempts: 1, labels: { team: 'web' } });
    const done = await waitForEnd(stack.baseUrl, id);
    assert.equal(done.status, 'failed');
    const [got] = await waitFor('the task.failed webhook', () => {
      const hits = receiver.of('task.failed', (d) => d.taskId === id);
      return hits.length > 0 ? hits : undefined;
    });
    assert.ok(got);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['x-atelier-event'], 'task.failed');
    assert.equal(got.headers['x-atelier-delivery'], got.body.id);
    assert.match(String(got.headers['x-atelier-signature']), /^sha256=[0-9a-f]{64}$/);
    assert.ok(verifySignature(got.raw, SECRET, got.headers['x-atelier-signature'] as string), 'valid signature');
    assert.ok(!verifySignature(got.raw, 'another-secret', got.headers['x-atelier-signature'] as string));
    const stamped = got.headers['x-atelier-timestamped-signature'] as string;
    assert.ok(
      verifyTimestamped(got.raw, SECRET, stamped, Date.now() / 1000),
      `valid timestamped signature: ${stamped}`,
    );
    assert.ok(!Number.isNaN(Date.parse(got.body.occurredAt)));
    assert.deepEqual(got.body.data, {
      taskId: id,
      run: 1,
      attempt: 1,
      agent: 'stand-in',
      labels: { team: 'web' },
      exitCode: 3,
      error: { class: done.error?.class, message: done.error?.message },
    });
    const stored = await deliveredRow(got.body.id);
    assert.equal(stored.attempts, 1);
    assert.equal(receiver.of('task.failed', (d) => d.taskId === id).length, 1, 'exactly one delivery');
    assert.equal(await countOf('task.failed', `task.failed:${id}:`), 1);
  });

  it('retries a delivery the receiver refuses, under the same id and body, until it is accepted', async () => {
    receiver.failFirst = 2;
    try {
      const { id } = await submit(stack.baseUrl, { prompt: '@exit 3', maxAttempts: 1 });
      assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'failed');
      const hits = await waitFor(
        'three requests of the task.failed webhook',
        () => {
          const h = receiver.of('task.failed', (d) => d.taskId === id);
          return h.length >= 3 ? h : undefined;
        },
        { timeoutMs: 30_000 },
      );
      assert.deepEqual(
        hits.map((h) => h.answered),
        [500, 500, 200],
      );
      assert.equal(new Set(hits.map((h) => h.headers['x-atelier-delivery'])).size, 1, 'one delivery id');
      assert.equal(new Set(hits.map((h) => h.raw)).size, 1, 'the same bytes each time');
      for (const h of hits) assert.ok(verifySignature(h.raw, SECRET, h.headers['x-atelier-signature'] as string));
      const stored = await deliveredRow(hits[0]?.body.id ?? '');
      assert.equal(stored.attempts, 3);
      assert.equal(stored.last_error, null);
      assert.equal(receiver.of('task.failed', (d) => d.taskId === id).length, 3, 'nothing after the 200');
    } finally {
      receiver.failFirst = 0;
    }
    const output = stack.output();
    assert.match(output, /webhook not accepted/, 'the refusals were logged');
    assert.ok(!output.includes(SECRET), 'the secret never reaches the logs');
    assert.ok(!output.includes('sha256='), 'nor any signature');
  });

  it('delivers one breaker.opened when an agent breaker opens', async () => {
    // breaker-a opens after two breaker-class failures within a minute; its chain falls back to breaker-b.
    for (let i = 0; i < 2; i++) {
      const { id } = await submit(stack.baseUrl, {
        prompt: '@when a @fail overloaded\n@print done by b',
        agent: 'breaker-a',
      });
      assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
    }
    const [got] = await waitFor('the breaker.opened webhook', () => {
      const hits = receiver.of('breaker.opened', (d) => d.agent === 'breaker-a');
      return hits.length > 0 ? hits : undefined;
    });
    assert.ok(got);
    assert.equal(got.headers['x-atelier-event'], 'breaker.opened');
    assert.ok(verifySignature(got.raw, SECRET, got.headers['x-atelier-signature'] as string));
    assert.equal(got.body.data.failureClass, 'overloaded');
    assert.equal(got.body.data.failures, 2);
    assert.ok(Date.parse(String(got.body.data.openUntil)) > Date.parse(String(got.body.data.openedAt)));
    await deliveredRow(got.body.id);
    assert.equal(receiver.of('breaker.opened', () => true).length, 1, 'exactly one');
    assert.equal(await countOf('breaker.opened', 'breaker.opened:breaker-a:'), 1);
  });

  it('delivers one budget.reached when the daily budget holds tasks back', async () => {
    const capped = await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: 0 } });
    assert.equal(capped.status, 200, capped.text);
    const { id } = await submit(stack.baseUrl, { prompt: '@print after the raise' });
    try {
      const [got] = await waitFor('the budget.reached webhook', () => {
        const hits = receiver.of('budget.reached', () => true);
        return hits.length > 0 ? hits : undefined;
      });
      assert.ok(got);
      assert.ok(verifySignature(got.raw, SECRET, got.headers['x-atelier-signature'] as string));
      const today = new Date().toISOString().slice(0, 10);
      assert.equal(got.body.data.day, today);
      assert.equal(got.body.data.dailyUsd, 0);
      await deliveredRow(got.body.id);
      // The waiting task asked again and again meanwhile (every 0.2 s): still one notification.
      assert.equal(receiver.of('budget.reached', () => true).length, 1, 'one per UTC day');
      assert.equal(await countOf('budget.reached', `budget.reached:${today}`), 1);
    } finally {
      await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: null } });
    }
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
  });
});
