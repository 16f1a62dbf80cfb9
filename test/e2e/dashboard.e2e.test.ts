import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { readSse } from '../../src/cli/sse';
import type { DashboardSnapshot } from '../../src/api/dashboard/snapshot';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { call, submit } from '../support/http-api';
import { startInProcessApi } from '../support/in-process-api';
import { stopStackCleanly } from '../support/process-tree';
import { sample, scrape } from '../support/prometheus';
import { startStack, type Stack } from '../support/stack';
import { ROOT, testEnv, uniqueQueue } from '../support/test-env';
import { waitFor } from '../support/wait-for';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
/** A second token of the API's, with characters a link must percent-encode. */
const LINK_TOKEN = 'a&b%41';
const ARTIFACTS = join(ROOT, 'test/artifacts');

/** A dashboard stream: its `snapshot` events, one at a time as they come, until `close`. */
async function openStream(baseUrl: string): Promise<{ next: () => Promise<DashboardSnapshot>; close: () => void }> {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/v1/dashboard/stream`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: abort.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.ok(res.body);
  const events = readSse(res.body)[Symbol.asyncIterator]();
  return {
    next: async () => {
      for (;;) {
        const { value: event, done } = await events.next();
        if (done) throw new Error('the stream ended');
        if (event.event === 'snapshot') return JSON.parse(event.data) as DashboardSnapshot;
      }
    },
    close: () => abort.abort(),
  };
}

/** The first `snapshot` event of a new dashboard stream. */
async function firstSnapshot(baseUrl: string): Promise<DashboardSnapshot> {
  const stream = await openStream(baseUrl);
  try {
    return await stream.next();
  } finally {
    stream.close();
  }
}

/** The page's connection state ("live", "error", …) and its text, each time it changes from now on. */
const RECORD_CONNECTION_STATES = `(() => {
  const el = document.getElementById('connection');
  window.connectionStates = [];
  new MutationObserver(() => window.connectionStates.push(el.dataset.state + ': ' + el.textContent)).observe(el, {
    attributes: true,
    childList: true,
    characterData: true,
    subtree: true,
  });
})()`;

/**
 * The dashboard in real headless Chromium (Debian's package, driven by Playwright): it loads, asks for
 * the token once, shows a task just submitted while it runs, and updates when it finishes.
 */
describe('the dashboard', { timeout: 120_000 }, () => {
  let stack: Stack;
  let browser: Browser;

  before(async () => {
    // npm test installs Chromium when it is missing (infra/bootstrap.mjs); without it this must fail, not skip.
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`,
    );
    stack = await startStack({ ATELIER_API_TOKENS: `${TOKEN},${LINK_TOKEN}` });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      if (stack) await stopStackCleanly(stack);
    }
  });

  /** The page in a context of its own, its stream served by the test: `snapshot`, then the end. */
  const pageShowing = async (snapshot: DashboardSnapshot): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.route('**/v1/dashboard/stream', (route) =>
      route.fulfill({
        status: 200,
        contentType: 'text/event-stream',
        body: `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`,
      }),
    );
    await page.goto(`${stack.baseUrl}/`);
    return { context, page };
  };

  it('serves the page without a token and its data only with one', async () => {
    const page = await call(stack.baseUrl, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.ok(page.text.includes('/dashboard/dashboard.js'));
    assert.equal((await call(stack.baseUrl, 'GET', '/dashboard/dashboard.js')).status, 200);
    assert.equal((await call(stack.baseUrl, 'GET', '/dashboard/..%2Fdashboard.controller.js')).status, 404);
    for (const inherited of ['constructor', '__proto__', 'toString']) {
      const res = await call(stack.baseUrl, 'GET', `/dashboard/${inherited}`);
      assert.equal(res.status, 404, `${inherited}: ${res.text}`);
      // Refused as no dashboard file by name, before any file is looked for.
      assert.match(res.text, /no dashboard file/, `${inherited}: ${res.text}`);
    }

    assert.equal((await call(stack.baseUrl, 'GET', '/v1/dashboard')).status, 401);
    assert.equal((await call(stack.baseUrl, 'GET', '/v1/dashboard/stream')).status, 401);
    const res = await call(stack.baseUrl, 'GET', '/v1/dashboard', { token: TOKEN });
    assert.equal(res.status, 200, res.text);
    const snapshot = res.json as DashboardSnapshot;
    assert.deepEqual(
      snapshot.queues.map((q) => q.role),
      ['workflows', 'agents'],
    );
    assert.equal(snapshot.series.minutes.length, 60);
    assert.ok(
      snapshot.workers.some((w) => w.role === 'agents' && w.healthy),
      JSON.stringify(snapshot.workers),
    );
    assert.ok(snapshot.temporalUi.workflows.endsWith('/namespaces/default/workflows'));
  });

  it('streams a new snapshot when a task changes (from PostgreSQL), on the stream already open', async () => {
    // How soon the change comes (the next 1 s check, not the 5 s refresh) is dashboard-feed's to test.
    const stream = await openStream(stack.baseUrl);
    try {
      const before = await stream.next();
      const { id } = await submit(stack.baseUrl, { prompt: '@print streamed' }, TOKEN);
      const deadline = Date.now() + 30_000;
      let afterEnd = before;
      while (afterEnd.recent.find((t) => t.id === id)?.status !== 'succeeded') {
        assert.ok(Date.now() < deadline, `no snapshot shows task ${id} succeeded`);
        afterEnd = await stream.next();
      }
      assert.notEqual(afterEnd.cursor, before.cursor);
      assert.ok(afterEnd.series.submitted.reduce((a, b) => a + b, 0) >= 1);
    } finally {
      stream.close();
    }
  });

  it('counts a stream its client closed in atelier_http_requests_total, as 499', async () => {
    const closed = { method: 'GET', route: '/v1/dashboard/stream', status: '499' };
    const countNow = async (): Promise<number> =>
      sample((await scrape(`${stack.baseUrl}/metrics`)).samples, 'atelier_http_requests_total', closed);
    const before = await countNow();
    await firstSnapshot(stack.baseUrl);
    await waitFor('the closed stream to be counted', async () => (await countNow()) >= before + 1, {
      timeoutMs: 10_000,
    });
  });

  it('shows a task just submitted, running, then finished, live in Chromium', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    try {
      // Without a token the page asks for one, and keeps it.
      await page.goto(`${stack.baseUrl}/`);
      await page.locator('#token-form').waitFor({ state: 'visible' });
      await page.fill('#token-input', TOKEN);
      await page.click('#token-form button[type=submit]');
      await page.locator('#connection[data-state="live"]').waitFor();
      assert.equal(await page.evaluate('localStorage.getItem("atelier.apiToken")'), TOKEN);
      problems.length = 0; // the 401 that made the page ask is expected

      const { id, links } = await submit(stack.baseUrl, { prompt: '@print dashboard\n@sleep 3\n@print done' }, TOKEN);
      const running = page.locator(`#running tr[data-task-id="${id}"]`);
      await running.waitFor({ timeout: 20_000 });
      assert.match((await running.textContent()) ?? '', /stand-in/);
      const recent = page.locator(`#recent tr[data-task-id="${id}"]`);
      assert.equal(await recent.getAttribute('data-status'), 'running');
      const link = await recent.locator('a').first().getAttribute('href');
      assert.equal(link, links.temporalUi, 'the task links into the Temporal Web UI');

      await page.locator(`#recent tr[data-task-id="${id}"][data-status="succeeded"]`).waitFor({ timeout: 30_000 });
      await page.locator(`#running tr[data-task-id="${id}"]`).waitFor({ state: 'detached' });
      const succeeded = await page.textContent('#count-succeeded');
      assert.ok(Number(succeeded) >= 1, `succeeded in the last hour: ${succeeded}`);
      assert.ok(
        (await page.locator('#throughput-chart svg rect.succeeded').count()) >= 1,
        'the throughput chart has a bar',
      );
      const workerRows = await page.locator('#workers tbody tr[data-worker]').count();
      assert.ok(workerRows >= 2, 'both workers are listed');
      // Each worker's health is named, not only coloured, under a column that says what it is.
      const workers = page.locator('#workers');
      assert.equal(await workers.getByRole('columnheader', { name: 'Health', exact: true }).count(), 1);
      const serving = await workers.getByRole('img', { name: 'serving', exact: true }).count();
      const notServing = await workers.getByRole('img', { name: 'not serving', exact: true }).count();
      assert.ok(serving >= 1, 'this stack’s workers serve');
      assert.equal(serving + notServing, workerRows, 'one named health per worker');

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

      // A reload finds the token in localStorage: no question asked.
      await page.reload();
      await page.locator('#connection[data-state="live"]').waitFor();
      assert.equal(await page.locator('#token-form').isHidden(), true);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('takes a token from a link percent-encoded, whatever characters it holds', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${stack.baseUrl}/#token=${encodeURIComponent(LINK_TOKEN)}`);
      await page.locator('#connection[data-state="live"]').waitFor();
      assert.equal(await page.evaluate('localStorage.getItem("atelier.apiToken")'), LINK_TOKEN);
    } finally {
      await context.close();
    }
  });

  it('takes a token from a link even when it is not valid percent-encoding', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    try {
      await page.goto(`${stack.baseUrl}/#token=abc%zz`);
      // The page connected with the token as written, and the API refused it.
      await page.locator('#token-error', { hasText: 'that token was refused' }).waitFor();
      assert.equal(await page.evaluate('localStorage.getItem("atelier.apiToken")'), 'abc%zz');
      assert.equal(await page.evaluate('location.hash'), '', 'the token left the address bar');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('asks again for a token a header cannot carry, instead of reconnecting for ever', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // A line break pasted into the link, say.
      await page.goto(`${stack.baseUrl}/#token=abc%0Adef`);
      await page.locator('#token-error', { hasText: 'that token cannot be sent' }).waitFor();
      assert.equal(await page.locator('#token-form').isVisible(), true);
    } finally {
      await context.close();
    }
  });

  it('counts every running task on the Running card, not only the 50 it lists', async () => {
    const real = (await call(stack.baseUrl, 'GET', '/v1/dashboard', { token: TOKEN })).json as DashboardSnapshot;
    const running = Array.from({ length: 50 }, () => ({
      id: randomUUID(),
      agent: 'stand-in',
      model: null,
      attempt: 1,
      worker: 'agent-worker',
      startedAt: real.generatedAt,
      elapsedSeconds: 0,
      links: { self: '/v1/tasks/x', temporalUi: real.temporalUi.workflows },
    }));
    const snapshot: DashboardSnapshot = { ...real, counts: { ...real.counts, running: 73 }, running };
    // The stream, as the API sends it with 73 tasks running.
    const { context, page } = await pageShowing(snapshot);
    try {
      await page.locator('#running tbody tr[data-task-id]').nth(49).waitFor();
      assert.equal(await page.locator('#running tbody tr[data-task-id]').count(), 50);
      assert.equal(await page.textContent('#running-count'), '50 of 73');
      assert.equal(await page.textContent('#count-running'), '73');
    } finally {
      await context.close();
    }
  });

  it('shows HTML in task data as text, never as markup', async () => {
    const real = (await call(stack.baseUrl, 'GET', '/v1/dashboard', { token: TOKEN })).json as DashboardSnapshot;
    // An agent's error message, or a model name a client sent: any text at all.
    const markup = '<img src=x onerror="window.__x=1">';
    const links = { self: '/v1/tasks/x', temporalUi: real.temporalUi.workflows };
    const failed = { id: randomUUID(), errorClass: markup, message: markup, finishedAt: real.generatedAt, links };
    const running = {
      id: randomUUID(),
      agent: 'stand-in',
      model: markup,
      attempt: 1,
      worker: markup,
      startedAt: real.generatedAt,
      elapsedSeconds: 0,
      links,
    };
    const snapshot: DashboardSnapshot = {
      ...real,
      counts: { ...real.counts, running: 1 },
      running: [running],
      failures: { ...real.failures, recent: [failed] },
    };
    const { context, page } = await pageShowing(snapshot);
    try {
      const failure = page.locator('#failures li');
      await failure.waitFor();
      assert.equal(await failure.textContent(), `${failed.id.slice(0, 8)} ${markup}: ${markup}`);
      const cells = page.locator(`#running tr[data-task-id="${running.id}"] td`);
      assert.equal(await cells.nth(1).textContent(), `stand-in (${markup})`);
      assert.equal(await cells.nth(3).textContent(), markup);
      assert.equal(await page.locator('main img').count(), 0, 'no element was made of the text');
      assert.equal(await page.evaluate('window.__x'), undefined);
    } finally {
      await context.close();
    }
  });

  it('reconnects when its stream goes silent without closing (a NAT or a proxy dropped it)', async () => {
    const proxy = await startCuttableProxy(new URL(stack.baseUrl).host);
    const context = await browser.newContext();
    const page = await context.newPage();
    const latest = (): Promise<string | undefined> =>
      page.evaluate('window.atelierDashboard.latest()?.generatedAt') as Promise<string | undefined>;
    try {
      // The page's clock is the test's to move: 45 s of silence pass at once.
      await page.clock.install();
      await page.goto(`http://${proxy.address}/#token=${TOKEN}`);
      await page.locator('#connection[data-state="live"]').waitFor();
      const before = await waitFor('a first snapshot', latest);
      await page.evaluate(RECORD_CONNECTION_STATES);

      proxy.cutWhere('/v1/dashboard/stream');
      const states = (): Promise<string[]> => page.evaluate('window.connectionStates') as Promise<string[]>;
      await waitFor('the page to give up on the silent stream', async () => {
        if ((await states()).includes('error: reconnecting (nothing heard for 45 s)')) return true;
        // Again if bytes already on their way when the line was cut came in since.
        await page.clock.fastForward(46_000);
        return false;
      });
      await waitFor('a snapshot over a new connection', async () => ((await latest()) ?? '') > (before ?? ''));
      await page.locator('#connection[data-state="live"]').waitFor();
      assert.equal((await states()).at(-1), 'live: live');
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  it('no longer shows "live" when snapshots stop coming over a stream that stays open (its API cannot read PostgreSQL)', async () => {
    // An API of its own, its PostgreSQL behind a proxy the test cuts: its stream stays open, with its
    // keep-alives, while it can compute no snapshot.
    const proxy = await startCuttableProxy(new URL(testEnv.databaseUrl).host);
    const db = new URL(testEnv.databaseUrl);
    db.host = proxy.address;
    const api = await startInProcessApi({
      DATABASE_URL: db.toString(),
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf-dashboard'),
    });
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // The page's clock is the test's to move: 16 s without a snapshot pass at once.
      await page.clock.install();
      await page.goto(`${api.baseUrl}/`);
      await page.locator('#connection[data-state="live"]').waitFor();
      await waitFor('a first snapshot', () => page.evaluate('window.atelierDashboard.latest()?.generatedAt'));
      await page.evaluate(RECORD_CONNECTION_STATES);

      proxy.cut();
      const states = (): Promise<string[]> => page.evaluate('window.connectionStates') as Promise<string[]>;
      await waitFor('the page to say its figures are not live', async () => {
        if ((await states()).some((state) => /^error: no new data for \d+ s$/.test(state))) return true;
        // Again if a snapshot already on its way when the line was cut came in since.
        await page.clock.fastForward(16_000);
        return false;
      });
      assert.equal(await page.getAttribute('#connection', 'data-state'), 'error');
    } finally {
      await context.close();
      await proxy.close();
      await api.app.close();
    }
  });
});
