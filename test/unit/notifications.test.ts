import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import pino from 'pino';
import { ConfigError, loadConfig } from '../../src/config/env';
import { createPool } from '../../src/db/pool';
import { nextDelayMs, retryAfterMs, retryDelayMs, WEBHOOK_RETRY } from '../../src/notifications/backoff';
import { NotificationStore, type ClaimedNotification } from '../../src/notifications/notification-store';
import { enqueueNotification } from '../../src/notifications/outbox';
import { signBody, signTimestamped, verifySignature, verifyTimestamped } from '../../src/notifications/signing';
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../../src/notifications/webhook-dispatcher';
import { postWebhook, webhookRequest } from '../../src/notifications/webhook-request';
import { webhookTargets, type WebhookTarget } from '../../src/notifications/webhook-target';
import { countingPool } from '../support/counting-pool';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';
import { waitFor, within } from '../support/wait-for';

const notification: ClaimedNotification = {
  id: '5f0c4c1e-3b5a-4a43-9d53-0d5a2b0e6f11',
  type: 'task.failed',
  data: { taskId: 't', run: 1 },
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  attempts: 0,
  deliveredTo: [],
  claim: '2026-01-02 03:05:45.678+00',
};

/** The target of a single configured URL. */
const targetOf = (url: string): WebhookTarget => {
  const [target] = webhookTargets([url], 'k');
  assert.ok(target);
  return target;
};

/** A request's body, parsed. */
const jsonBody = async <T>(req: IncomingMessage): Promise<T> => {
  let raw = '';
  for await (const chunk of req.setEncoding('utf8')) raw += chunk as string;
  return JSON.parse(raw) as T;
};

/** A receiver on 127.0.0.1 running `handle` for each request; closed by `close`. */
const listen = async (
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ base: string; port: number; close: () => Promise<void> }> => {
  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
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

  it('signs the time of a delivery with its body, and accepts it only near that time', () => {
    const body = '{"a":1}';
    const at = 1_765_000_000;
    const header = signTimestamped(body, 'k', at);
    const expected = createHmac('sha256', 'k').update(`${at}.${body}`).digest('hex');
    assert.equal(header, `t=${at},sha256=${expected}`);
    assert.equal(verifyTimestamped(body, 'k', header, at + 299), true);
    assert.equal(verifyTimestamped(body, 'k', header, at - 299), true);
    assert.equal(verifyTimestamped(body, 'k', header, at + 301), false, 'replayed later');
    assert.equal(verifyTimestamped('{"a":2}', 'k', header, at), false);
    assert.equal(verifyTimestamped(body, 'other', header, at), false);
    assert.equal(
      verifyTimestamped(body, 'k', header.replace(`t=${at}`, `t=${at + 600}`), at + 600),
      false,
      'time changed',
    );
    assert.equal(verifyTimestamped(body, 'k', undefined, at), false);
  });

  it('sends the same bytes, id and signature on every retry of a notification, and the time of each', () => {
    const n = notification;
    const sentAt = Date.UTC(2026, 0, 2, 3, 5);
    const first = webhookRequest(n, 'k', sentAt);
    const retry = webhookRequest({ ...n, attempts: 3 }, 'k', sentAt + 60_000);
    const { 'x-atelier-timestamped-signature': firstStamp, ...firstRest } = first.headers;
    const { 'x-atelier-timestamped-signature': retryStamp, ...retryRest } = retry.headers;
    assert.deepEqual({ ...retry, headers: retryRest }, { ...first, headers: firstRest });
    assert.equal(firstStamp, signTimestamped(first.body, 'k', sentAt / 1000));
    assert.equal(retryStamp, signTimestamped(first.body, 'k', sentAt / 1000 + 60));
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
});

describe('webhook requests', { timeout: 30_000 }, () => {
  it('names a URL by its position and host only: its path, query and credentials may be secrets', () => {
    const urls = ['https://user:pw@hooks.example.com/in/T01/B02/token?x=y', 'http://127.0.0.1:9000/x'];
    const targets = webhookTargets(urls, 'k');
    assert.deepEqual(
      targets.map((t) => t.label),
      ['webhook 1 (hooks.example.com)', 'webhook 2 (127.0.0.1:9000)'],
    );
    const keys = targets.map((t) => t.key);
    for (const key of keys) assert.match(key, /^[0-9a-f]{64}$/);
    assert.notEqual(keys[0], keys[1]);
    assert.deepEqual(
      webhookTargets(urls, 'k').map((t) => t.key),
      keys,
      'the same key on every start',
    );
  });

  it('reports a failed request without the credentials, path or query string its error quotes', async (t) => {
    const url = 'https://hook-user:pw-not-shown@hooks.example.com/in/path-not-shown?token=query-not-shown';
    const fetchMock = t.mock.method(globalThis, 'fetch', () =>
      Promise.reject(new TypeError(`Request cannot be constructed from a URL that includes credentials: ${url}`)),
    );
    const request = webhookRequest(notification, 'k');
    const reason = (await postWebhook(targetOf(url), request, 1000))?.error;
    assert.ok(reason !== undefined && !/not-shown/.test(reason), 'a secret of the URL is in the reason');
    assert.equal(
      reason,
      'Request cannot be constructed from a URL that includes credentials: webhook 1 (hooks.example.com)',
    );

    // Quoted otherwise (here a piece of the path, decoded): only the kind of error is left.
    fetchMock.mock.mockImplementation(() => Promise.reject(new TypeError('no route to path not shown')));
    assert.deepEqual(await postWebhook(targetOf('https://hooks.example.com/in/path%20not%20shown'), request, 1000), {
      error: 'TypeError',
    });
  });

  it("says why fetch would not ask a URL at all: a port it refuses, say, from the error's cause", async () => {
    const request = webhookRequest(notification, 'k');
    // 10080 is among the ports the Fetch standard blocks; nothing is sent, so nothing listens.
    assert.deepEqual(await postWebhook(targetOf('http://127.0.0.1:10080/in'), request, 1000), {
      error: 'fetch failed: bad port',
    });
  });

  it('does not read the answer, so an endless one is no burden', async () => {
    let closed = false;
    const receiver = await listen((req, res) => {
      req.resume();
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024);
      // Writes until the client stops reading, and more each time it reads on.
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', pump);
      res.on('close', () => (closed = true));
      pump();
    });
    try {
      // Reading the answer would last until this timeout, past the test's own.
      const request = webhookRequest(notification, 'k');
      assert.equal(await postWebhook(targetOf(`${receiver.base}/endless`), request, 120_000), undefined);
      await waitFor('the answer to be cut off', () => closed);
    } finally {
      await receiver.close();
    }
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

  it('spreads a retry over half to all of its delay, at the cap too, and waits as long as a receiver asks, within the cap', () => {
    assert.equal(
      nextDelayMs(3, undefined, WEBHOOK_RETRY, () => 0),
      2000,
    );
    assert.equal(
      nextDelayMs(3, undefined, WEBHOOK_RETRY, () => 0.999999),
      4000,
    );
    // At the 10-minute cap, events refused together still spread out.
    assert.equal(
      nextDelayMs(11, undefined, WEBHOOK_RETRY, () => 0),
      300_000,
    );
    assert.equal(
      nextDelayMs(11, undefined, WEBHOOK_RETRY, () => 0.5),
      450_000,
    );
    // Retry-After wins when longer, never past the 10-minute cap.
    assert.equal(
      nextDelayMs(1, 30_000, WEBHOOK_RETRY, () => 0.5),
      30_000,
    );
    assert.equal(
      nextDelayMs(1, 3_600_000, WEBHOOK_RETRY, () => 0.5),
      600_000,
    );
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-07T10:00:00Z');
    assert.equal(retryAfterMs('120', now), 120_000);
    assert.equal(retryAfterMs('Mon, 07 Dec 2026 10:01:30 GMT', now), 90_000);
    assert.equal(retryAfterMs('Mon, 07 Dec 2026 09:00:00 GMT', now), 0, 'a date gone by');
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
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

/**
 * The outbox in a database of its own: dispatchers claim whatever is due in the whole table. The suite's
 * time allows for a test that waits out two statement timeouts.
 */
describe('notification outbox', { timeout: 90_000 }, () => {
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

  /** Claims for a minute, as a dispatcher with the default retry policy. */
  const claimDue = (limit: number): Promise<ClaimedNotification[]> =>
    store.claimDue(limit, 60, WEBHOOK_RETRY.giveUpAfterMs);

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
    const claims = await Promise.all(Array.from({ length: 6 }, () => claimDue(10)));
    const ids = claims.flat().map((n) => n.id);
    assert.equal(ids.length, 30);
    assert.equal(new Set(ids).size, 30, 'no row claimed twice');
    assert.deepEqual(await claimDue(100), [], 'claimed rows are not due');
    await pool.query('DELETE FROM notifications');
  });

  it('retries a failed delivery after the delay, marks it delivered, and gives up after the horizon', async () => {
    await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'retry', data: {} });
    const [claimed] = await claimDue(10);
    assert.ok(claimed);
    assert.equal(
      await store.markFailed(claimed, 'webhook 1 (r): HTTP 500', 0, WEBHOOK_RETRY.giveUpAfterMs),
      'retrying',
    );
    const [again] = await claimDue(10);
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
    await pool.query(
      "UPDATE notifications SET created_at = now() - interval '23 hours 59 minutes' WHERE dedupe_key = 'old'",
    );
    const [old] = await claimDue(10);
    assert.ok(old);
    // The next try, 2 minutes on, would fall past the 24 h.
    assert.equal(
      await store.markFailed(old, 'webhook 1 (r): HTTP 503', 120_000, WEBHOOK_RETRY.giveUpAfterMs),
      'given-up',
    );
    const given = await pool.query(
      'SELECT next_attempt_at, last_error, delivered_at FROM notifications WHERE id = $1',
      [old.id],
    );
    assert.deepEqual(given.rows[0], {
      next_attempt_at: null,
      last_error: 'webhook 1 (r): HTTP 503',
      delivered_at: null,
    });
    assert.deepEqual(await claimDue(10), [], 'given up: never due again');
  });

  it("records a round's failure only under its own claim, not over a later one or a delivery", async () => {
    await pool.query('DELETE FROM notifications');
    await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'outlasted', data: {} });
    // Dispatcher A claims the row, and its round outlasts the claim (its database did not answer).
    const [a] = await store.claimDue(10, 0.001, WEBHOOK_RETRY.giveUpAfterMs);
    assert.ok(a);
    const [claimB] = await waitFor('A claim to run out', async () => {
      const claimed = await claimDue(10);
      return claimed.length > 0 && claimed;
    });
    assert.ok(claimB);
    const b = await pool.query<{ next_attempt_at: Date }>('SELECT next_attempt_at FROM notifications WHERE id = $1', [
      a.id,
    ]);
    // B claimed it meanwhile (the wait above), and is sending it: A's failure leaves B's claim alone.
    assert.equal(await store.markFailed(a, 'webhook 1 (r): HTTP 500', 0, WEBHOOK_RETRY.giveUpAfterMs), 'claim-lost');
    const after = await pool.query<{ next_attempt_at: Date; attempts: number; last_error: string | null }>(
      'SELECT next_attempt_at, attempts, last_error FROM notifications WHERE id = $1',
      [a.id],
    );
    assert.deepEqual(after.rows[0], { next_attempt_at: b.rows[0]?.next_attempt_at, attempts: 0, last_error: null });
    // B's round fails with the same error: A's failure, written again (as after a lost answer), is still
    // not taken for its own.
    assert.equal(
      await store.markFailed(claimB, 'webhook 1 (r): HTTP 500', 60_000, WEBHOOK_RETRY.giveUpAfterMs),
      'retrying',
    );
    assert.equal(await store.markFailed(a, 'webhook 1 (r): HTTP 500', 0, WEBHOOK_RETRY.giveUpAfterMs), 'claim-lost');
    // Once delivered, no failure of an older round counts it as given up.
    await store.markDelivered(a.id);
    assert.equal(await store.markFailed(a, 'webhook 1 (r): HTTP 500', 0, WEBHOOK_RETRY.giveUpAfterMs), 'claim-lost');
  });

  it("answers a failure written again (its first answer lost, the statement retried) as that round's outcome", async () => {
    await pool.query('DELETE FROM notifications');
    await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'written-twice', data: {} });
    const [claimed] = await claimDue(10);
    assert.ok(claimed);
    const fail = () => store.markFailed(claimed, 'webhook 1 (r): HTTP 500', 60_000, WEBHOOK_RETRY.giveUpAfterMs);
    assert.equal(await fail(), 'retrying');
    // The claim is gone now (the first write moved next_attempt_at), but the row holds this round's error.
    assert.equal(await fail(), 'retrying');
  });

  it('finds the finished notifications to delete in their index (migration 0017), not by reading the table', async () => {
    await pool.query('DELETE FROM notifications');
    // A busy outbox: many events still being tried, a few finished.
    await pool.query(
      `INSERT INTO notifications (id, type, dedupe_key, payload, created_at, next_attempt_at)
       SELECT gen_random_uuid(), 'task.failed', 'index-' || g, '{}', now() - g * interval '1 minute',
              CASE WHEN g % 50 <> 0 THEN now() END
       FROM generate_series(1, 20000) g`,
    );
    await pool.query('ANALYZE notifications');
    const statements: string[] = [];
    await new NotificationStore(countingPool(pool, statements)).deleteFinished(
      3600_000,
      WEBHOOK_RETRY.giveUpAfterMs,
      0,
    );
    const explained = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statements[0]}`, [3600, 1000, 90_000]);
    const plan = explained.rows.map((r) => r['QUERY PLAN']).join('\n');
    assert.match(plan, /Index Scan using notifications_finished/, plan);
    await pool.query('DELETE FROM notifications');
  });

  it('gives up and deletes in batches', async () => {
    await pool.query('DELETE FROM notifications');
    for (let i = 0; i < 5; i++) {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: `batch-${i}`, data: {} });
    }
    await pool.query(`UPDATE notifications SET created_at = now() - interval '25 hours'`);
    assert.equal((await store.giveUpExpired(WEBHOOK_RETRY.giveUpAfterMs, 2)).length, 2);
    assert.equal((await store.giveUpExpired(WEBHOOK_RETRY.giveUpAfterMs, 10)).length, 3);
    // Given up at 24 h, kept an hour after that.
    assert.equal(await store.deleteFinished(3600_000, WEBHOOK_RETRY.giveUpAfterMs, 4), 4);
    assert.equal(await store.deleteFinished(3600_000, WEBHOOK_RETRY.giveUpAfterMs, 4), 1);
  });

  /** A dispatcher of the test's database that retries at once, its log lines kept in `logs`. */
  const dispatcher = (
    urls: string[],
    logs: string[],
    options: Partial<WebhookDispatcherOptions> = {},
  ): WebhookDispatcher =>
    new WebhookDispatcher({
      pool,
      urls,
      secret: 'k',
      logger: pino({ level: 'info' }, { write: (line: string) => logs.push(line) }),
      retry: { ...WEBHOOK_RETRY, initialDelayMs: 0 },
      retentionMs: 7 * 24 * 3600_000,
      ...options,
    });
  const logged = (logs: string[], msg: string): Record<string, unknown>[] =>
    logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

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
      assert.equal(lastError, `webhook 1 (127.0.0.1:${port}): HTTP 500`);
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

  it('names a URL in logs and last_error by its position and host, never by the path that holds its token', async () => {
    await pool.query('DELETE FROM notifications');
    // The second URL is refused, the way a URL whose path token was revoked is.
    const receiver = await listen((req, res) => {
      req.resume();
      res.writeHead(req.url?.startsWith('/services/') ? 500 : 204).end();
    });
    const logs: string[] = [];
    const webhooks = dispatcher(
      [`${receiver.base}/first`, `${receiver.base}/services/T0001/B0002/path-token-kept?x=query-kept`],
      logs,
      { intervalMs: 20 },
    );
    let row: { attempts: number; last_error: string };
    try {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'path-token', data: {} });
      webhooks.start();
      row = await waitFor('two refused rounds', async () => {
        const r = await pool.query<{ attempts: number; last_error: string }>(
          'SELECT attempts, last_error FROM notifications',
        );
        return (r.rows[0]?.attempts ?? 0) >= 2 ? r.rows[0] : undefined;
      });
    } finally {
      await webhooks.stop();
      await receiver.close();
    }
    // Secrets first, with a message of its own: a failed equal() would print them.
    assert.ok(!/path-token|query-kept|services/.test(row.last_error), 'a secret is in last_error');
    assert.equal(row.last_error, `webhook 2 (127.0.0.1:${receiver.port}): HTTP 500`);
    assert.ok(!logs.some((l) => /path-token|query-kept|services/.test(l)), 'a secret is in the logs');
    assert.deepEqual(logged(logs, 'webhook dispatcher started')[0]?.urls, [
      `webhook 1 (127.0.0.1:${receiver.port})`,
      `webhook 2 (127.0.0.1:${receiver.port})`,
    ]);
    assert.ok(logged(logs, 'webhook not accepted').length >= 2);
  });

  it('sends an event once to a URL that accepted it, however often another URL refuses it', async () => {
    await pool.query('DELETE FROM notifications');
    const received: string[] = [];
    // What delivered_to held when the refusing URL was asked: from the second round on, the healthy URL
    // must be recorded (the URLs of one round are asked at once).
    const recordedBefore: number[] = [];
    const receiver = await listen((req, res) => {
      received.push(req.url ?? '');
      req.resume();
      if (req.url === '/healthy') {
        res.writeHead(204).end();
        return;
      }
      const refused = received.filter((u) => u === '/recovering').length <= 2;
      void pool
        .query<{ n: number }>('SELECT cardinality(delivered_to) AS n FROM notifications')
        .then((r) => recordedBefore.push(r.rows[0]?.n ?? -1))
        .finally(() => res.writeHead(refused ? 503 : 204).end());
    });
    try {
      const urls = [`${receiver.base}/healthy`, `${receiver.base}/recovering`];
      const webhooks = dispatcher(urls, []);
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'per-url', data: {} });
      for (let round = 0; round < 3; round++) await webhooks.round();

      assert.deepEqual(
        received.filter((u) => u === '/healthy'),
        ['/healthy'],
        'the healthy URL got the event once',
      );
      assert.equal(received.filter((u) => u === '/recovering').length, 3);
      assert.deepEqual(recordedBefore.slice(1), [1, 1]);
      const row = await pool.query<{ attempts: number; delivered_at: Date | null; delivered_to: string[] }>(
        'SELECT attempts, delivered_at, delivered_to FROM notifications',
      );
      assert.equal(row.rows[0]?.attempts, 3);
      assert.ok(row.rows[0]?.delivered_at instanceof Date, 'delivered once both accepted');
      assert.deepEqual(
        [...(row.rows[0]?.delivered_to ?? [])].sort(),
        webhookTargets(urls, 'k')
          .map((t) => t.key)
          .sort(),
      );
    } finally {
      await receiver.close();
    }
  });

  it('waits as long as a refusing receiver asks (Retry-After), and asks the other URLs meanwhile, not after it', async () => {
    await pool.query('DELETE FROM notifications');
    let releaseSlow: (() => void) | undefined;
    const slowAnswered = new Promise<void>((resolve) => (releaseSlow = resolve));
    const order: string[] = [];
    const receiver = await listen((req, res) => {
      req.resume();
      order.push(req.url ?? '');
      if (req.url === '/slow') void slowAnswered.then(() => res.writeHead(204).end());
      else if (req.url === '/limited') res.writeHead(429, { 'Retry-After': '300' }).end();
      else {
        res.writeHead(204).end();
        releaseSlow?.();
      }
    });
    try {
      const webhooks = dispatcher([`${receiver.base}/slow`, `${receiver.base}/limited`, `${receiver.base}/fast`], [], {
        timeoutMs: 3000,
      });
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'retry-after', data: {} });
      const started = Date.now();
      // The slow URL answers only once the fast one has been asked: asked one after another, the
      // round would wait for it until its timeout.
      await webhooks.round();
      assert.deepEqual([...order].sort(), ['/fast', '/limited', '/slow']);
      const row = await pool.query<{ wait: number; last_error: string }>(
        'SELECT extract(epoch FROM next_attempt_at - clock_timestamp())::float8 AS wait, last_error FROM notifications',
      );
      const wait = row.rows[0]?.wait ?? 0;
      assert.ok(wait > 300 - (Date.now() - started) / 1000 - 1 && wait <= 300, `due again in ${wait} s`);
      // Only the rate-limited URL refused: the slow one was not timed out waiting its turn.
      assert.equal(row.rows[0]?.last_error, `webhook 2 (127.0.0.1:${receiver.port}): HTTP 429`);
    } finally {
      await receiver.close();
    }
  });

  it('holds off a URL that did not answer in time, so the next rounds do not wait for it, and logs it once', async () => {
    await pool.query('DELETE FROM notifications');
    const received: string[] = [];
    const receiver = await listen((req, res) => {
      req.resume();
      received.push(req.url ?? '');
      // The silent URL never answers.
      if (req.url === '/healthy') res.writeHead(204).end();
    });
    try {
      const logs: string[] = [];
      const webhooks = dispatcher([`${receiver.base}/silent`, `${receiver.base}/healthy`], logs, {
        timeoutMs: 300,
        holdOffMs: 600_000,
      });
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'silent-1', data: {} });
      await webhooks.round();
      assert.equal(received.filter((u) => u === '/silent').length, 1);
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'silent-2', data: {} });
      await webhooks.round();
      await webhooks.round();
      assert.equal(received.filter((u) => u === '/silent').length, 1, 'held off: not tried again');
      assert.equal(received.filter((u) => u === '/healthy').length, 2, 'the healthy URL got both events');
      const rows = await pool.query<{ last_error: string; wait: number }>(
        `SELECT last_error, extract(epoch FROM next_attempt_at - clock_timestamp())::float8 AS wait
         FROM notifications WHERE dedupe_key = 'silent-2'`,
      );
      assert.equal(
        rows.rows[0]?.last_error,
        `webhook 1 (127.0.0.1:${receiver.port}): not tried, it did not answer within 300 ms lately`,
      );
      assert.ok((rows.rows[0]?.wait ?? 0) > 500, `due again in ${rows.rows[0]?.wait} s, not before the hold-off ends`);
      assert.equal(logged(logs, 'webhook URL held off: no answer in time').length, 1);
    } finally {
      await receiver.close();
    }
  });

  /** A receiver that accepts every delivery, keeping the ids it got in order. */
  const acceptingReceiver = async () => {
    const received: string[] = [];
    const receiver = await listen((req, res) => {
      void jsonBody<{ id: string }>(req).then(({ id }) => {
        received.push(id);
        res.writeHead(204).end();
      });
    });
    return { received, receiver };
  };

  it('gives up, without sending it, a due event older than the give-up window', async () => {
    await pool.query('DELETE FROM notifications');
    const { received, receiver } = await acceptingReceiver();
    try {
      // As a row refused 3 times, whose later rounds crashed the process until 24 h had passed.
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'expired', data: {} });
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'fresh', data: {} });
      await pool.query(
        `UPDATE notifications SET created_at = now() - interval '25 hours', attempts = 3,
           last_error = 'webhook 1 (r): HTTP 503'
         WHERE dedupe_key = 'expired'`,
      );
      const ids = await pool.query<{ id: string; dedupe_key: string }>('SELECT id, dedupe_key FROM notifications');
      const idOf = (key: string): string | undefined => ids.rows.find((r) => r.dedupe_key === key)?.id;
      const logs: string[] = [];
      await dispatcher([`${receiver.base}/in`], logs).round();

      assert.deepEqual(received, [idOf('fresh')], 'only the fresh event was sent');
      const expired = await pool.query(
        'SELECT next_attempt_at, delivered_at, last_error FROM notifications WHERE id = $1',
        [idOf('expired')],
      );
      assert.deepEqual(expired.rows[0], {
        next_attempt_at: null,
        delivered_at: null,
        last_error: 'webhook 1 (r): HTTP 503; not delivered within 24 h of the event',
      });
      assert.deepEqual(
        logged(logs, 'webhook given up').map((l) => [l.delivery, l.attempts]),
        [[idOf('expired'), 3]],
      );
    } finally {
      await receiver.close();
    }
  });

  it('delivers even when its housekeeping fails, and logs the failure', async (t) => {
    await pool.query('DELETE FROM notifications');
    const { received, receiver } = await acceptingReceiver();
    try {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'despite-housekeeping', data: {} });
      // As statements cut by a statement_timeout on a huge backlog.
      const timedOut = (): Promise<never> => Promise.reject(new Error('canceling statement due to statement timeout'));
      t.mock.method(NotificationStore.prototype, 'deleteFinished', timedOut);
      t.mock.method(NotificationStore.prototype, 'giveUpExpired', timedOut);
      const logs: string[] = [];
      await dispatcher([`${receiver.base}/in`], logs).round();
      assert.equal(received.length, 1, 'the due event was sent');
      assert.deepEqual(
        logged(logs, 'webhook housekeeping failed').map((l) => l.step),
        ['delete finished notifications', 'give up expired notifications'],
      );
    } finally {
      await receiver.close();
    }
  });

  it('ends a round only when all its deliveries have, even if one could not record its outcome', async (t) => {
    await pool.query('DELETE FROM notifications');
    let release = (): void => undefined;
    const released = new Promise<void>((r) => (release = r));
    const receiver = await listen((req, res) => {
      void jsonBody<{ data: { slow: boolean } }>(req)
        .then(({ data }) => (data.slow ? released : undefined))
        .then(() => res.writeHead(204).end());
    });
    try {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'fast', data: { slow: false } });
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'slow', data: { slow: true } });
      const ids = await pool.query<{ id: string; dedupe_key: string }>('SELECT id, dedupe_key FROM notifications');
      const fastId = ids.rows.find((r) => r.dedupe_key === 'fast')?.id;
      const markDelivered = NotificationStore.prototype.markDelivered;
      let lost = 0;
      t.mock.method(NotificationStore.prototype, 'markDelivered', function (this: NotificationStore, id: string) {
        if (id !== fastId) return markDelivered.call(this, id);
        lost++;
        return Promise.reject(new Error('connection lost'));
      });
      const logs: string[] = [];
      let ended = false;
      const round = dispatcher([`${receiver.base}/in`], logs)
        .round()
        .finally(() => (ended = true));
      await waitFor('the fast delivery to fail to record its outcome', () => lost > 0);
      assert.equal(ended, false, 'the round ended while the slow delivery ran');
      release();
      await round;

      const slow = await pool.query<{ delivered_at: Date | null }>(
        "SELECT delivered_at FROM notifications WHERE dedupe_key = 'slow'",
      );
      assert.ok(slow.rows[0]?.delivered_at instanceof Date, 'the slow delivery finished');
      assert.deepEqual(
        logged(logs, 'webhook delivery not recorded').map((l) => [l.delivery, l.error]),
        [[fastId, 'connection lost']],
      );
    } finally {
      release();
      await receiver.close();
    }
  });

  it('goes on delivering within seconds after its database connection went silent, and stops without waiting on it', async () => {
    await pool.query('DELETE FROM notifications');
    const { received, receiver } = await acceptingReceiver();
    const proxy = await startCuttableProxy(new URL(db.url).host);
    const url = new URL(db.url);
    url.host = proxy.address;
    // One connection: every statement of the dispatcher goes on the one that is cut.
    const silentPool = createPool(url.toString(), () => undefined, 1);
    const logs: string[] = [];
    const webhooks = dispatcher([`${receiver.base}/in`], logs, { pool: silentPool, intervalMs: 50 });
    const delivered = async (key: string): Promise<boolean> =>
      (
        await pool.query<{ delivered_at: Date | null }>(
          'SELECT delivered_at FROM notifications WHERE dedupe_key = $1',
          [key],
        )
      ).rows[0]?.delivered_at instanceof Date;
    try {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'before-silence', data: {} });
      webhooks.start();
      await waitFor('the first event delivered', () => delivered('before-silence'));

      // A failover leaves the pooled connection open but silent (every statement here names the table),
      // while new connections pass.
      proxy.cutWhere('notifications');
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: 'after-silence', data: {} });
      await waitFor('the second event delivered', () => delivered('after-silence'), { timeoutMs: 20_000 });
      assert.equal(received.length, 2);

      // Silent again, and a round waits on it (its one connection stays taken): stop() waits for that
      // round, which the statement's timeout ends.
      proxy.cutWhere('notifications');
      let takenPolls = 0;
      await waitFor('a round waiting on the silent connection', () => {
        takenPolls = silentPool.idleCount === 0 ? takenPolls + 1 : 0;
        return takenPolls >= 5;
      });
      await within('stop() while a round waits on a silent connection', 15_000, webhooks.stop());
      const timedOut = logs.filter((l) => l.includes('Query read timeout'));
      assert.equal(timedOut.length, 2, logs.join('\n'));
    } finally {
      // Closing the proxy first ends a statement still waiting on a silent connection, which stop() awaits.
      await proxy.close();
      await webhooks.stop();
      await silentPool.end();
      await receiver.close();
    }
  });

  it("counts the outbox for the metrics: pending (with the oldest one's age), delivered, given up", async () => {
    await pool.query('DELETE FROM notifications');
    assert.deepEqual(await store.outboxStats(), { pending: 0, oldestPendingSeconds: 0, givenUp: 0 });
    for (const key of ['waits', 'delivered', 'given-up']) {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: `stats-${key}`, data: {} });
    }
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '90 seconds' WHERE dedupe_key = 'stats-waits'`,
    );
    await pool.query(
      `UPDATE notifications SET delivered_at = now(), next_attempt_at = NULL WHERE dedupe_key = 'stats-delivered'`,
    );
    await pool.query(`UPDATE notifications SET next_attempt_at = NULL WHERE dedupe_key = 'stats-given-up'`);
    const stats = await store.outboxStats();
    assert.deepEqual([stats.pending, stats.givenUp], [1, 1]);
    assert.ok(stats.oldestPendingSeconds >= 90 && stats.oldestPendingSeconds < 120, String(stats.oldestPendingSeconds));
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

  it('keeps a given-up event the retention after it was given up, not after it happened', async () => {
    await pool.query('DELETE FROM notifications');
    for (const key of ['delivered', 'given-up', 'given-up-long-ago']) {
      await enqueueNotification(pool, { type: 'task.failed', dedupeKey: key, data: {} });
    }
    // Given up after the 24 h window, an hour ago: the resend recipe (operations.md) must still find it.
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '25 hours', next_attempt_at = NULL,
         delivered_at = CASE WHEN dedupe_key = 'delivered' THEN now() - interval '25 hours' END
       WHERE dedupe_key IN ('delivered', 'given-up')`,
    );
    await pool.query(
      `UPDATE notifications SET created_at = now() - interval '49 hours', next_attempt_at = NULL
       WHERE dedupe_key = 'given-up-long-ago'`,
    );
    await dispatcher(['http://127.0.0.1:9/unused'], [], { retentionMs: 24 * 3600_000 }).round();
    const kept = await pool.query<{ dedupe_key: string }>('SELECT dedupe_key FROM notifications ORDER BY dedupe_key');
    assert.deepEqual(
      kept.rows.map((r) => r.dedupe_key),
      ['given-up'],
    );
  });
});
