import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { readSse } from '../../src/cli/sse';
import type { DashboardSnapshot, TaskLinksView } from '../../src/api/dashboard/snapshot';
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

/**
 * What of the page a reader cannot see, as lines: a card its table makes scroll sideways, and a table cell
 * whose text is cut short without a tooltip that has it whole.
 */
const HIDDEN_TEXT = `(() => {
  const hidden = [];
  for (const card of document.querySelectorAll('main .card')) {
    if (card.scrollWidth > card.clientWidth) {
      hidden.push(card.id + ' needs ' + card.scrollWidth + ' px, has ' + card.clientWidth);
    }
  }
  for (const cell of document.querySelectorAll('main th, main td')) {
    if (cell.scrollWidth <= cell.clientWidth) continue;
    const tooltip = (cell.querySelector('[title]') || cell).title || '';
    if (!tooltip.includes(cell.textContent)) {
      hidden.push(cell.closest('table').id + ': "' + cell.textContent + '" cut short');
    }
  }
  return hidden;
})()`;

/** Seconds in a time as the page writes it under a minute: "5.5s ago", "7.0s". */
const secondsIn = (text: string | null): number => {
  const match = /^(\d+\.\d)s( ago)?$/.exec(text ?? '');
  assert.ok(match?.[1], `not a time in seconds: ${text}`);
  return Number(match[1]);
};

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

  /**
   * The page in a context of its own, its stream served by the test: `snapshot`, then the end. The stream
   * the page opens again then gets no answer, so that the page shows that snapshot only. With `clock`,
   * the page's clock is the test's to move (page.clock).
   */
  const pageShowing = async (
    snapshot: DashboardSnapshot,
    { viewport, clock = false }: { viewport?: { width: number; height: number }; clock?: boolean } = {},
  ): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext(viewport ? { viewport } : {});
    const page = await context.newPage();
    if (clock) await page.clock.install();
    let served = false;
    await page.route('**/v1/dashboard/stream', async (route) => {
      if (served) return; // left unanswered: the page waits for it
      served = true;
      await route.fulfill({
        status: 200,
        contentType: 'text/event-stream',
        body: `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`,
      });
    });
    await page.goto(`${stack.baseUrl}/`);
    return { context, page };
  };

  /** The API's snapshot now, to build one to serve from: `before(s)`, the instant `s` seconds before it. */
  const snapshotNow = async (): Promise<{
    real: DashboardSnapshot;
    before: (seconds: number) => string;
    links: TaskLinksView;
  }> => {
    const real = (await call(stack.baseUrl, 'GET', '/v1/dashboard', { token: TOKEN })).json as DashboardSnapshot;
    const at = Date.parse(real.generatedAt);
    return {
      real,
      before: (seconds) => new Date(at - seconds * 1000).toISOString(),
      links: { self: '/v1/tasks/x', temporalUi: real.temporalUi.workflows },
    };
  };

  it('serves the page without a token and its data only with one', async () => {
    const page = await call(stack.baseUrl, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.ok(page.text.includes('/dashboard/dashboard.js'));
    assert.equal((await call(stack.baseUrl, 'GET', '/dashboard/dashboard.js')).status, 200);
    assert.ok(page.text.includes('<link rel="icon" href="/dashboard/favicon.svg"'));
    const icon = await call(stack.baseUrl, 'GET', '/dashboard/favicon.svg');
    assert.equal(icon.status, 200);
    assert.equal(icon.headers.get('content-type'), 'image/svg+xml');
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

  it('loads with no error in the console and no failed request: it names an icon it serves', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    let icon: { status: number; type: string | undefined } | undefined;
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
    page.on('response', (res) => {
      if (res.status() >= 400) problems.push(`${res.status()}: ${res.url()}`);
      if (new URL(res.url()).pathname === '/dashboard/favicon.svg')
        icon = { status: res.status(), type: res.headers()['content-type'] };
    });
    try {
      await page.goto(`${stack.baseUrl}/#token=${TOKEN}`);
      await page.locator('#connection[data-state="live"]').waitFor();
      // Once the page has loaded the browser asks for its icon: the one the page names, else /favicon.ico,
      // which no 'response' event shows (the console reports its 404, the first time this browser asks).
      await waitFor('the browser to ask for the icon the page names', () => icon !== undefined || problems.length > 0, {
        timeoutMs: 10_000,
      });
      assert.deepEqual(problems, []);
      assert.deepEqual(icon, { status: 200, type: 'image/svg+xml' });
    } finally {
      await context.close();
    }
  });

  it('moves the times since an instant on every second between snapshots: created, polled, elapsed', async () => {
    const { real, before, links } = await snapshotNow();
    const id = randomUUID();
    // One task, created 4 s before the snapshot and started 3 s before it.
    const snapshot: DashboardSnapshot = {
      ...real,
      workers: [
        {
          identity: 'agent-worker:4242-0a1b2c3d@host',
          role: 'agents',
          taskQueue: 'atelier-agents',
          lastPollAt: before(2),
          healthy: true,
          running: 1,
          succeededLastHour: 0,
          failedLastHour: 0,
        },
      ],
      running: [
        {
          id,
          agent: 'stand-in',
          model: null,
          attempt: 1,
          worker: 'agent-worker:4242-0a1b2c3d@host',
          startedAt: before(3),
          elapsedSeconds: 3,
          links,
        },
      ],
      recent: [
        {
          id,
          status: 'running',
          agent: 'stand-in',
          createdAt: before(4),
          finishedAt: null,
          durationSeconds: null,
          errorClass: null,
          links,
        },
      ],
    };
    const { context, page } = await pageShowing(snapshot, { clock: true });
    try {
      const created = page.locator(`#recent tr[data-task-id="${id}"] td`).nth(3);
      const elapsed = page.locator(`#running tr[data-task-id="${id}"] td`).nth(4);
      const polled = page.locator('#workers tr[data-worker] td').nth(5);
      await created.waitFor();
      const times = async (): Promise<{ created: number; polled: number; elapsed: number }> => ({
        created: secondsIn(await created.textContent()),
        polled: secondsIn(await polled.textContent()),
        elapsed: secondsIn(await elapsed.textContent()),
      });
      const first = await times();
      assert.ok(first.created >= 4 && first.created < 10, `created ${first.created}s ago`);

      // No snapshot comes (the stream ended, the page's new one gets no answer): the page's clock moves on.
      await page.clock.fastForward(10_000);
      const later = await waitFor('the times to move on by 10 s', async () => {
        const now = await times();
        return now.created >= first.created + 10 && now;
      });
      assert.ok(later.polled >= first.polled + 10, `polled ${first.polled}s ago, then ${later.polled}s ago`);
      assert.ok(later.elapsed >= first.elapsed + 10, `elapsed ${first.elapsed}s, then ${later.elapsed}s`);
      assert.ok(later.created > later.elapsed, `created ${later.created}s ago, running for ${later.elapsed}s`);
      assert.equal(await page.evaluate('window.atelierDashboard.latest().generatedAt'), real.generatedAt);
    } finally {
      await context.close();
    }
  });

  it('fits a laptop screen: no table is wider than its card, no cell cuts its text short without a tooltip', async () => {
    const { real, before, links } = await snapshotNow();
    // Names and figures as long as a busy deployment's: workers on hosts named as a cluster names pods,
    // hundreds of attempts an hour, a worker that last polled an hour ago (busy ever since).
    const identity = (name: string, n: number): string =>
      `${name}:${1000 + n}-5f3c9a0${n}@atelier-agents-7d9f8c6b5-x2k4q`;
    const snapshot: DashboardSnapshot = {
      ...real,
      counts: { queued: 1234, running: 56, succeededLastHour: 7890, failedLastHour: 123, cancelledLastHour: 45 },
      queues: real.queues.map((q) => ({
        ...q,
        backlog: 1234,
        backlogAgeSeconds: 3725,
        waitingTasks: 1234,
        oldestWaitingSeconds: 3725,
      })),
      workers: [0, 1, 2].map((n) => ({
        identity: identity(n === 0 ? 'workflow-worker' : 'agent-worker', n),
        role: n === 0 ? ('workflows' as const) : ('agents' as const),
        taskQueue: n === 0 ? 'atelier-workflows' : 'atelier-agents',
        lastPollAt: before(3725 + n),
        healthy: n !== 2,
        running: 12,
        succeededLastHour: 1234,
        failedLastHour: 123,
      })),
      running: [
        {
          id: randomUUID(),
          agent: 'claude-code',
          model: 'claude-sonnet-4-5',
          attempt: 12,
          worker: identity('agent-worker', 1),
          startedAt: before(3725),
          elapsedSeconds: 3725,
          links,
        },
      ],
      recent: ['succeeded', 'cancelled', 'failed'].map((status) => ({
        id: randomUUID(),
        status,
        agent: 'claude-code',
        createdAt: before(3725),
        finishedAt: before(1),
        durationSeconds: 3724,
        errorClass: status === 'succeeded' ? null : 'context_overflow',
        links,
      })),
    };
    const { context, page } = await pageShowing(snapshot, { viewport: { width: 1366, height: 768 } });
    try {
      await page.locator('#workers tbody tr[data-worker]').nth(2).waitFor();
      for (const [width, height] of [
        [1366, 768],
        [1280, 800],
        [1440, 900],
      ] as const) {
        await page.setViewportSize({ width, height });
        assert.deepEqual(await page.evaluate(HIDDEN_TEXT), [], `at ${width}×${height}`);
      }
    } finally {
      await context.close();
    }
  });

  it("says what Recent tasks' Took measures, which is not what atelier list's TOOK does", async () => {
    const real = (await call(stack.baseUrl, 'GET', '/v1/dashboard', { token: TOKEN })).json as DashboardSnapshot;
    const { context, page } = await pageShowing(real);
    try {
      // Took counts from the run's submission, `atelier list`'s TOOK from its first attempt's start.
      const took = page.locator('#recent').getByRole('columnheader', { name: 'Took', exact: true });
      assert.match((await took.getAttribute('title')) ?? '', /^from submission .* time queued included; .*TOOK/);
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
