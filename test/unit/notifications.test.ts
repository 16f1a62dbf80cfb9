import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import pino from 'pino';
import { ConfigError, loadConfig } from '../../src/config/env';
import { retryDelayMs, WEBHOOK_RETRY } from '../../src/notifications/backoff';
import { NotificationStore, type ClaimedNotification } from '../../src/notifications/notification-store';
import { enqueueNotification } from '../../src/notifications/outbox';
import { signBody, verifySignature } from '../../src/notifications/signing';
import { WebhookDispatcher } from '../../src/notifications/webhook-dispatcher';
import { describeUrl, postWebhook, webhookRequest } from '../../src/notifications/webhook-request';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';

const notification: ClaimedNotification = {
  id: '5f0c4c1e-3b5a-4a43-9d53-0d5a2b0e6f11',
  type: 'task.failed',
  data: { taskId: 't', run: 1 },
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  attempts: 0,
};

describe('webhook signing', () => {
  it('is sha256= and the hex HMAC-SHA256 of the raw body under the secret', () => {
    const body = '{"id":"x","type":"task.failed"}';
    const expected = createHmac('sha256', 's3cret').update(body).digest('hex');
    assert.equal(signBody(body, 's3cret'), `sha256=${expected}`);
    assert.match(signBody(body, 's3cret'), /^sha256=[0-9a-f]{64}$/);
  });

  it('verifies only the same body under the same secret', () => {
    const body = '{"a":1}';
    const signature = signBody(body, 'k');
    assert.equal(verifySignature(body, 'k', signature), true);
    assert.equal(verifySignature('{"a":2}', 'k', signature), false);
    assert.equal(verifySignature(body, 'other', signature), false);
    assert.equal(verifySignature(body, 'k', undefined), false);
    assert.equal(verifySignature(body, 'k', 'sha256=00'), false);
  });

  it('sends the same bytes, id and signature on every retry of a notification', () => {
    const n = notification;
    const first = webhookRequest(n, 'k');
    const retry = webhookRequest({ ...n, attempts: 3 }, 'k');
    assert.deepEqual(retry, first);
    assert.deepEqual(JSON.parse(first.body), {
      id: n.id,
      type: 'task.failed',
      occurredAt: '2026-01-02T03:04:05.678Z',
      data: { taskId: 't', run: 1 },
    });
    assert.equal(first.headers['x-atelier-event'], 'task.failed');
    assert.equal(first.headers['x-atelier-delivery'], n.id);
    assert.equal(first.headers['x-atelier-signature'], signBody(first.body, 'k'));
  });

  it('keeps credentials and query strings out of a URL it reports', () => {
    assert.equal(describeUrl('https://user:pw@hooks.example.com/in?token=abc'), 'https://hooks.example.com/in');
  });

  it('reports a failed request without the credentials or query string its error quotes', async (t) => {
    const url = 'https://hook-user:pw-not-shown@hooks.example.com/in?token=query-not-shown';
    t.mock.method(globalThis, 'fetch', () =>
      Promise.reject(new TypeError(`Request cannot be constructed from a URL that includes credentials: ${url}`)),
    );
    const reason = await postWebhook(url, webhookRequest(notification, 'k'), 1000);
    assert.ok(reason !== undefined && !/not-shown/.test(reason), 'a secret of the URL is in the reason');
    assert.equal(
      reason,
      'Request cannot be constructed from a URL that includes credentials: https://hooks.example.com/in',
    );
  });
});

describe('webhook backoff', () => {
  it('doubles from 1 s and stops at the 10-minute cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => retryDelayMs(n)),
      [1000, 2000, 4000, 8000, 16_000],
    );
    assert.equal(retryDelayMs(10), 512_000);
    assert.equal(retryDelayMs(11), 600_000);
    assert.equal(retryDelayMs(500), 600_000);
    assert.equal(WEBHOOK_RETRY.giveUpAfterMs, 24 * 3600_000);
  });
});

describe('webhook configuration', () => {
  const refusal = (env: NodeJS.ProcessEnv): string => {
    try {
      loadConfig(env);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail('the configuration was accepted');
  };

  it('is off by default and reads comma-separated URLs', () => {
    assert.deepEqual(loadConfig({}).ATELIER_WEBHOOK_URLS, []);
    const config = loadConfig({
      ATELIER_WEBHOOK_URLS: ' https://a.example/hook , http://127.0.0.1:9000/x ,',
      ATELIER_WEBHOOK_SECRET: 'k',
    });
    assert.deepEqual(config.ATELIER_WEBHOOK_URLS, ['https://a.example/hook', 'http://127.0.0.1:9000/x']);
    assert.equal(config.ATELIER_WEBHOOK_SECRET, 'k');
  });

  it('refuses URLs without a secret, and anything but http(s) URLs, without echoing them', () => {
    assert.match(refusal({ ATELIER_WEBHOOK_URLS: 'https://a.example/hook' }), /ATELIER_WEBHOOK_SECRET: is required/);
    const bad = refusal({
      ATELIER_WEBHOOK_URLS: 'https://ok.example,ftp://secret-token@x',
      ATELIER_WEBHOOK_SECRET: 'k',
    });
    assert.match(bad, /ATELIER_WEBHOOK_URLS: entry 2 is not an http\(s\) URL/);
    assert.doesNotMatch(bad, /secret-token/);
    assert.match(refusal({ ATELIER_WEBHOOK_URLS: 'not a url', ATELIER_WEBHOOK_SECRET: 'k' }), /entry 1/);
  });

  it('keeps finished notifications 7 days unless told otherwise, and at least a day', () => {
    assert.equal(loadConfig({}).ATELIER_WEBHOOK_RETENTION_DAYS, 7);
    assert.equal(loadConfig({ ATELIER_WEBHOOK_RETENTION_DAYS: '30' }).ATELIER_WEBHOOK_RETENTION_DAYS, 30);
    assert.match(refusal({ ATELIER_WEBHOOK_RETENTION_DAYS: '0.5' }), /ATELIER_WEBHOOK_RETENTION_DAYS: /);
  });
});

/** The outbox in a database of its own: dispatchers claim whatever is due in the whole table. */
describe('notification outbox', { timeout: 30_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;
  let store: NotificationStore;

  before(async () => {
    db = await createScratchDatabase('notifications');
    pool = new Pool({ connectionString: db.url, max: 10 });
    pool.on('error', () => undefined);
    store = new NotificationStore(pool);
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('enqueues once per dedupe key', async () => {
    for (let i = 0; i < 3; i++) {
      await enqueueNotification(pool, { type: 'budget.reached', dedupeKey: 'budget.reached:once', data: { i } });
    }
    const rows = await pool.query("SELECT payload FROM notifications WHERE dedupe_key = 'budget.reached:once'");
    assert.deepEqual(
      rows.rows.map((r: { payload: unknown }) => r.payload),
      [{ i: 0 }],
    );
    await pool.query('DELETE FROM notifications');
  });

  it('lets concurrent dispatchers claim each due row once, and a claim hides it until it runs out', async () => {
    for (let i = 0; i < 30; i++) {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: `claim-${i}`, data: { i } });
    }
    const claims = await Promise.all(Array.from({ length: 6 }, () => store.claimDue(10, 60)));
    const ids = claims.flat().map((n) => n.id);
    assert.equal(ids.length, 30);
    assert.equal(new Set(ids).size, 30, 'no row claimed twice');
    assert.deepEqual(await store.claimDue(100, 60), [], 'claimed rows are not due');
    await pool.query('DELETE FROM notifications');
  });

  it('retries a failed delivery after the delay, marks it delivered, and gives up after the horizon', async () => {
    await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'retry', data: {} });
    const [claimed] = await store.claimDue(10, 60);
    assert.ok(claimed);
    assert.equal(await store.markFailed(claimed.id, 'http://r/: HTTP 500', 0, WEBHOOK_RETRY.giveUpAfterMs), true);
    const [again] = await store.claimDue(10, 60);
    assert.equal(again?.id, claimed.id);
    assert.equal(again?.attempts, 1);
    await store.markDelivered(claimed.id);
    const delivered = await pool.query(
      'SELECT attempts, delivered_at, next_attempt_at, last_error FROM notifications WHERE id = $1',
      [claimed.id],
    );
    assert.equal(delivered.rows[0].attempts, 2);
    assert.ok(delivered.rows[0].delivered_at instanceof Date);
    assert.equal(delivered.rows[0].next_attempt_at, null);
    assert.equal(delivered.rows[0].last_error, null);

    await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'old', data: {} });
    await pool.query("UPDATE notifications SET created_at = now() - interval '25 hours' WHERE dedupe_key = 'old'");
    const [old] = await store.claimDue(10, 60);
    assert.ok(old);
    assert.equal(await store.markFailed(old.id, 'http://r/: HTTP 503', 1000, WEBHOOK_RETRY.giveUpAfterMs), false);
    const given = await pool.query(
      'SELECT next_attempt_at, last_error, delivered_at FROM notifications WHERE id = $1',
      [old.id],
    );
    assert.deepEqual(given.rows[0], { next_attempt_at: null, last_error: 'http://r/: HTTP 503', delivered_at: null });
    assert.deepEqual(await store.claimDue(10, 60), [], 'given up: never due again');
  });
  /** A dispatcher of the test's database, its log lines kept in `logs`. */
  const dispatcher = (urls: string[], logs: string[]): WebhookDispatcher =>
    new WebhookDispatcher({
      pool,
      urls,
      secret: 'k',
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
      retry: { ...WEBHOOK_RETRY, initialDelayMs: 0 },
      retentionMs: 7 * 24 * 3600_000,
    });

  it('sends the user and password of a URL as Basic authorization, and never logs or stores them', async () => {
    await pool.query('DELETE FROM notifications');
    const received: { url?: string; headers: IncomingHttpHeaders }[] = [];
    const receiver = createServer((req, res) => {
      received.push({ url: req.url, headers: req.headers });
      req.resume();
      // The first delivery is refused, so that the failure goes through the logs and last_error.
      res.writeHead(received.length === 1 ? 500 : 204).end();
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const { port } = receiver.address() as AddressInfo;
      const url = `http://hook-user:pass%40word-kept@127.0.0.1:${port}/hooks?token=query-kept`;
      const logs: string[] = [];
      const webhooks = dispatcher([url], logs);
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'basic', data: {} });

      await webhooks.round();
      const failed = await pool.query<{ last_error: string | null }>('SELECT last_error FROM notifications');
      const lastError = failed.rows[0]?.last_error ?? '';
      // Secrets first, with a message of its own: a failed equal() would print them.
      assert.ok(!/word-kept|query-kept/.test(lastError), 'a secret is in last_error');
      assert.equal(lastError, `http://127.0.0.1:${port}/hooks: HTTP 500`);
      await webhooks.round();
      const delivered = await pool.query<{ delivered_at: Date | null }>('SELECT delivered_at FROM notifications');
      assert.ok(delivered.rows[0]?.delivered_at instanceof Date, 'delivered');

      assert.equal(received.length, 2);
      for (const r of received) {
        assert.equal(r.url, '/hooks?token=query-kept');
        assert.equal(r.headers.authorization, `Basic ${Buffer.from('hook-user:pass@word-kept').toString('base64')}`);
      }
      assert.ok(logs.length > 0 && !logs.some((l) => /word-kept|query-kept/.test(l)), 'a secret is in the logs');
    } finally {
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }
  });

  it('deletes finished notifications older than the retention, and keeps pending and recent ones', async () => {
    await pool.query('DELETE FROM notifications');
    for (const key of ['old-delivered', 'old-given-up', 'old-pending', 'recent-delivered', 'recent-given-up']) {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: key, data: {} });
    }
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '8 days', next_attempt_at = NULL,
         delivered_at = CASE WHEN dedupe_key LIKE '%delivered' THEN now() - interval '8 days' END
       WHERE dedupe_key IN ('old-delivered', 'old-given-up')`,
    );
    // Pending, but not due: the round has nothing to send.
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '8 days', next_attempt_at = now() + interval '1 hour'
       WHERE dedupe_key = 'old-pending'`,
    );
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '6 days', next_attempt_at = NULL,
         delivered_at = CASE WHEN dedupe_key LIKE '%delivered' THEN now() - interval '6 days' END
       WHERE dedupe_key LIKE 'recent-%'`,
    );
    const logs: string[] = [];
    await dispatcher(['http://127.0.0.1:9/unused'], logs).round();
    const kept = await pool.query<{ dedupe_key: string }>('SELECT dedupe_key FROM notifications ORDER BY dedupe_key');
    assert.deepEqual(
      kept.rows.map((r) => r.dedupe_key),
      ['old-pending', 'recent-delivered', 'recent-given-up'],
    );
  });
});
