import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { DEFAULT_BREAKER } from '../../src/gate/breaker';
import { AdmissionStore, leaseKey, type AgentGateConfig, type AttemptKey } from '../../src/store/admission-store';
import { AgentStatusStore } from '../../src/store/agent-status-store';
import { BudgetStore } from '../../src/store/budget-store';
import { BreakerResetStore } from '../../src/store/breaker-reset-store';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';
import { insertTask } from '../support/task-rows';
import { waitFor } from '../support/wait-for';

const config = (c: Partial<AgentGateConfig> = {}): AgentGateConfig => ({ breaker: DEFAULT_BREAKER, ...c });
const key = (taskId: string = randomUUID(), attempt = 1): AttemptKey => ({ taskId, runId: 'run-1', attempt });

/**
 * The gate's state lives in PostgreSQL, shared by every agent worker. These tests use a database of
 * their own: the daily budget is global to a database, and must not hold back other tests.
 */
describe('AdmissionStore', { timeout: 30_000 }, () => {
  let db: ScratchDatabase;
  let pool: Pool;
  let gate: AdmissionStore;
  /** A pool that records every statement sent through it, for the gate's cost. */
  let counting: Pool;
  const statements: string[] = [];

  before(async () => {
    db = await createScratchDatabase('admission');
    pool = new Pool({ connectionString: db.url, max: 30 });
    // Dropping the database at the end ends its idle connections: expected, not an error.
    pool.on('error', () => undefined);
    gate = new AdmissionStore(pool, { leaseSeconds: 30 });
    counting = new Pool({ connectionString: db.url, max: 2 });
    counting.on('error', () => undefined);
    counting.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
        const [first] = args;
        statements.push(typeof first === 'string' ? first : (first as { text: string }).text);
        return query(...args);
      };
    });
  });
  after(async () => {
    await counting?.end();
    await pool?.end();
    await db?.drop();
  });

  const breakerOf = async (agent: string) =>
    (
      await pool.query<{ state: string; failures: number }>(
        'SELECT state, failures FROM agent_breakers WHERE agent = $1',
        [agent],
      )
    ).rows[0];
  const leaseOf = async (k: AttemptKey) =>
    (await pool.query('SELECT 1 FROM agent_leases WHERE key = $1', [leaseKey(k)])).rowCount;

  it('admits exactly maxConcurrent of many attempts asking at once', async () => {
    const agent = `a-${randomUUID()}`;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => gate.acquire(agent, key(), 'w', config({ maxConcurrent: 3 }))),
    );
    assert.equal(answers.filter((a) => a.admitted).length, 3);
    const refused = answers.find((a) => !a.admitted);
    assert.ok(refused && !refused.admitted);
    assert.equal(refused.wait.kind, 'concurrency');
  });

  it('admits the same attempt again without taking a second slot', async () => {
    const agent = `a-${randomUUID()}`;
    const k = key();
    assert.equal((await gate.acquire(agent, k, 'w', config({ maxConcurrent: 1 }))).admitted, true);
    assert.equal((await gate.acquire(agent, k, 'w', config({ maxConcurrent: 1 }))).admitted, true);
    assert.equal((await gate.acquire(agent, key(), 'w', config({ maxConcurrent: 1 }))).admitted, false);
    await gate.release(agent, k, 'succeeded', config());
    assert.equal((await gate.acquire(agent, key(), 'w', config({ maxConcurrent: 1 }))).admitted, true);
  });

  it("frees a dead worker's slot when its lease expires", async () => {
    const short = new AdmissionStore(pool, { leaseSeconds: 1 });
    const agent = `a-${randomUUID()}`;
    const renewed = key();
    assert.equal((await short.acquire(agent, renewed, 'alive', config({ maxConcurrent: 2 }))).admitted, true);
    assert.equal((await short.acquire(agent, key(), 'dies', config({ maxConcurrent: 2 }))).admitted, true);
    assert.equal((await short.acquire(agent, key(), 'w', config({ maxConcurrent: 2 }))).admitted, false);
    // The live worker keeps renewing; the dead one's slot comes back by itself.
    const renewing = setInterval(() => void short.renew(agent, renewed, 'alive'), 200);
    try {
      await waitFor('the dead worker to lose its slot', async () => {
        const a = await short.acquire(agent, key(), 'w', config({ maxConcurrent: 2 }));
        return a.admitted;
      });
      assert.equal((await short.acquire(agent, key(), 'w', config({ maxConcurrent: 2 }))).admitted, false);
    } finally {
      clearInterval(renewing);
    }
  });

  /** Makes a lease lapse now, as a worker cut off from the database for longer than a lease leaves it. */
  const lapse = (k: AttemptKey) =>
    pool.query(`UPDATE agent_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE key = $1`, [
      leaseKey(k),
    ]);

  it('takes a lapsed lease again on renewal, swept or not, and says it had lapsed', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ maxConcurrent: 1 });
    const slow = key();
    assert.equal((await gate.acquire(agent, slow, 'cut-off', cfg)).admitted, true);
    // Its worker cannot renew for longer than a lease: the slot goes to another attempt.
    await lapse(slow);
    const other = key();
    assert.equal((await gate.acquire(agent, other, 'w', cfg)).admitted, true);
    assert.equal(await gate.renew(agent, slow, 'cut-off'), false, 'the renewal says the lease had lapsed');
    assert.equal(await gate.renew(agent, slow, 'cut-off'), true);
    // Counted again: while both run, nothing more is admitted, and a retried acquire of the other
    // attempt keeps its slot.
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, false);
    assert.equal((await gate.acquire(agent, other, 'w', cfg)).admitted, true);
    // Swept after it lapsed, the lease is taken again too, and its release tells the breaker.
    await pool.query('DELETE FROM agent_leases WHERE key = $1', [leaseKey(slow)]);
    assert.equal(await gate.renew(agent, slow, 'cut-off'), false);
    assert.equal(await leaseOf(slow), 1);
    await gate.release(agent, slow, 'rate_limited', cfg);
    assert.equal(await leaseOf(slow), 0);
    assert.equal((await breakerOf(agent))?.failures, 1, 'the rate limit was counted');
  });

  it('frees a slot a renewal landing after the release took again, once its lease is dropped', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ maxConcurrent: 1 });
    const late = key();
    assert.equal((await gate.acquire(agent, late, 'w', cfg)).admitted, true);
    await gate.release(agent, late, 'succeeded', cfg);
    // The renewal sent before the release, answered after it: the slot is taken again.
    assert.equal(await gate.renew(agent, late, 'w'), false);
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, false);
    await gate.dropLease(late);
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, true);
  });

  it('makes a retried acquire of a lapsed lease pass the gate again', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ maxConcurrent: 1 });
    const first = key();
    assert.equal((await gate.acquire(agent, first, 'w', cfg)).admitted, true);
    await lapse(first);
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, true);
    assert.equal((await gate.acquire(agent, first, 'w', cfg)).admitted, false, 'its slot is taken');
  });

  it('closes an open breaker by hand, and names the tasks of its chains waiting for a breaker', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ breaker: { failureThreshold: 1, windowSeconds: 60, cooldownSeconds: 3600 } });
    const failed = key();
    assert.equal((await gate.acquire(agent, failed, 'w', cfg)).admitted, true);
    await gate.release(agent, failed, 'rate_limited', cfg);
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, false, 'open for an hour');
    const waitingAs = async (kind: string, chain: string[]): Promise<string> => {
      const id = await insertTask(pool, { prompt: 'p', agent: chain[0] });
      await pool.query(
        `UPDATE tasks SET agents = $2, waiting_reason = jsonb_build_object('kind', $3::text, 'agent', $4::text) WHERE id = $1`,
        [id, chain, kind, chain[0]],
      );
      return id;
    };
    // Held back by another agent of its chain (the wait shown), or by this one's breaker.
    const fallingBack = await waitingAs('breaker_open', ['other', agent]);
    const atLimit = await waitingAs('concurrency', ['other', agent]);
    const own = await waitingAs('breaker_open', [agent]);
    await waitingAs('breaker_open', ['other']);
    await waitingAs('daily_budget', [agent]);
    const woken = await new BreakerResetStore(pool).reset(agent);
    assert.deepEqual(woken.sort(), [`task-${fallingBack}`, `task-${atLimit}`, `task-${own}`].sort());
    assert.deepEqual({ ...(await breakerOf(agent)) }, { state: 'closed', failures: 0 });
    assert.equal((await gate.acquire(agent, key(), 'w', cfg)).admitted, true);
  });

  it('limits starts per minute, whatever ended since', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ startsPerMinute: 2 });
    for (let i = 0; i < 2; i++) {
      const k = key();
      assert.equal((await gate.acquire(agent, k, 'w', cfg)).admitted, true);
      await gate.release(agent, k, 'succeeded', cfg);
    }
    const third = await gate.acquire(agent, key(), 'w', cfg);
    assert.ok(!third.admitted && third.wait.kind === 'start_rate');
    assert.ok(
      third.wait.until !== null && third.wait.until - Date.now() > 55_000,
      'until the first start leaves the window',
    );
  });

  it('opens the breaker, refuses, lets one probe through, and closes on its success', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ breaker: { failureThreshold: 2, windowSeconds: 60, cooldownSeconds: 0.5 } });
    for (let i = 0; i < 2; i++) {
      const k = key();
      assert.equal((await gate.acquire(agent, k, 'w', cfg)).admitted, true);
      assert.equal(await gate.release(agent, k, 'rate_limited', cfg), false, 'no breaker closed');
    }
    const refused = await gate.acquire(agent, key(), 'w', cfg);
    assert.ok(!refused.admitted && refused.wait.kind === 'breaker_open', JSON.stringify(refused));
    assert.ok(refused.wait.until !== null);

    const probe = key();
    const probing = await waitFor('the cooldown to end', async () => {
      const a = await gate.acquire(agent, probe, 'w', cfg);
      return a.admitted ? a : undefined;
    });
    assert.deepEqual(probing, { admitted: true, probe: true });
    const meanwhile = await gate.acquire(agent, key(), 'w', cfg);
    assert.ok(!meanwhile.admitted && meanwhile.wait.kind === 'breaker_open', 'one probe at a time');
    // The probe's release says it closed the breaker: the tasks waiting for it are to be woken.
    assert.equal(await gate.release(agent, probe, 'succeeded', cfg), true);
    assert.equal(await gate.release(agent, probe, 'succeeded', cfg), false, 'a repeated release closes nothing');
    const after = key();
    assert.deepEqual(await gate.acquire(agent, after, 'w', cfg), { admitted: true, probe: false });
    assert.equal(await gate.release(agent, after, 'succeeded', cfg), false, 'nor does a success of a closed breaker');
  });

  it('reopens the breaker at once when the probe fails', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ breaker: { failureThreshold: 1, windowSeconds: 60, cooldownSeconds: 0.3 } });
    const first = key();
    await gate.acquire(agent, first, 'w', cfg);
    await gate.release(agent, first, 'auth', cfg);
    const probe = key();
    await waitFor('the probe', async () => (await gate.acquire(agent, probe, 'w', cfg)).admitted);
    assert.equal(await gate.release(agent, probe, 'overloaded', cfg), false);
    const after = await pool.query<{ state: string }>('SELECT state FROM agent_breakers WHERE agent = $1', [agent]);
    assert.equal(after.rows[0]?.state, 'open');
  });

  it('holds attempts back at the daily budget until it is raised, and at a task budget', async () => {
    const budgets = new BudgetStore(pool);
    const agent = `a-${randomUUID()}`;
    await pool.query(
      `INSERT INTO agent_spend (day, agent, cost_usd) VALUES ((clock_timestamp() AT TIME ZONE 'UTC')::date, $1, 1.5)`,
      [agent],
    );
    await budgets.setDaily(1.5);
    const held = await gate.acquire(agent, key(), 'w', config());
    assert.ok(!held.admitted && held.wait.kind === 'daily_budget');
    assert.equal(held.wait.until, (await budgets.daily()).resetsAt.getTime(), 'until the UTC day turns');
    await budgets.setDaily(2);
    assert.equal((await gate.acquire(agent, key(), 'w', config())).admitted, true);
    await budgets.setDaily(null);

    const taskId = await insertTask(pool, { prompt: 'p', agent });
    await pool.query(`INSERT INTO attempts (task_id, number, agent, cost_usd) VALUES ($1, 1, $2, 0.5)`, [
      taskId,
      agent,
    ]);
    await budgets.setTaskBudget(taskId, 0.5);
    const over = await gate.acquire(agent, key(taskId, 2), 'w', config());
    assert.ok(!over.admitted && over.wait.kind === 'task_budget');
    await budgets.setTaskBudget(taskId, 0.75);
    assert.equal((await gate.acquire(agent, key(taskId, 2), 'w', config())).admitted, true);
  });

  it('admits and releases an attempt of an agent without limits in one statement each', async () => {
    const cheap = new AdmissionStore(counting, { leaseSeconds: 30 });
    const agent = `a-${randomUUID()}`;
    // The agent's first admission creates its breaker row.
    const first = key();
    await cheap.acquire(agent, first, 'w', config());
    await cheap.release(agent, first, 'succeeded', config());

    const k = key();
    statements.length = 0;
    assert.deepEqual(await cheap.acquire(agent, k, 'w', config()), { admitted: true, probe: false });
    assert.equal(statements.length, 1, statements.join('\n'));
    assert.equal(await leaseOf(k), 1, 'it holds a lease: it counts as running, and its release counts once');
    statements.length = 0;
    await cheap.release(agent, k, 'succeeded', config());
    assert.equal(statements.length, 1, statements.join('\n'));
    assert.equal(await leaseOf(k), 0);

    // A failure that says nothing about the provider leaves the breaker as it is: one statement too.
    const other = key();
    await cheap.acquire(agent, other, 'w', config());
    statements.length = 0;
    await cheap.release(agent, other, 'nonzero_exit', config());
    assert.equal(statements.length, 1, statements.join('\n'));
    assert.deepEqual(await breakerOf(agent), { state: 'closed', failures: 0 });
    const starts = await pool.query('SELECT 1 FROM agent_starts WHERE agent = $1', [agent]);
    assert.equal(starts.rowCount, 0, 'starts are recorded only where a start-rate limit counts them');
  });

  it('counts a breaker failure once however often it is released, and readmits an attempt it let through', async () => {
    const agent = `a-${randomUUID()}`;
    const cfg = config({ breaker: { failureThreshold: 2, windowSeconds: 60, cooldownSeconds: 60 } });
    const early = key();
    assert.equal((await gate.acquire(agent, early, 'w', cfg)).admitted, true);
    const failing = key();
    await gate.acquire(agent, failing, 'w', cfg);
    await gate.release(agent, failing, 'rate_limited', cfg);
    await gate.release(agent, failing, 'rate_limited', cfg);
    assert.deepEqual(await breakerOf(agent), { state: 'closed', failures: 1 });

    const second = key();
    await gate.acquire(agent, second, 'w', cfg);
    await gate.release(agent, second, 'overloaded', cfg);
    assert.equal((await breakerOf(agent))?.state, 'open');
    const refused = await gate.acquire(agent, key(), 'w', cfg);
    assert.ok(!refused.admitted && refused.wait.kind === 'breaker_open');
    // Admitted before the breaker opened: its retried activity is admitted again.
    assert.deepEqual(await gate.acquire(agent, early, 'w', cfg), { admitted: true, probe: false });
  });

  it("shows starts in the last minute, from the gate's records or else from the attempts", async () => {
    const limited = `a-${randomUUID()}`;
    const cfg = config({ startsPerMinute: 5 });
    for (let i = 0; i < 2; i++) assert.equal((await gate.acquire(limited, key(), 'w', cfg)).admitted, true);
    const unlimited = `a-${randomUUID()}`;
    const taskId = await insertTask(pool, { prompt: 'p', agent: unlimited });
    assert.equal((await gate.acquire(unlimited, key(taskId), 'w', config())).admitted, true);
    await pool.query(`INSERT INTO attempts (task_id, number, agent) VALUES ($1, 1, $2)`, [taskId, unlimited]);
    const { agents } = await new AgentStatusStore(pool).all();
    assert.equal(agents.get(limited)?.startsLastMinute, 2);
    assert.equal(agents.get(limited)?.running, 2);
    assert.equal(agents.get(unlimited)?.startsLastMinute, 1);
    assert.equal(agents.get(unlimited)?.running, 1);
  });

  it('notifies breaker.opened once per outage: a failed probe that reopens the breaker is the same one', async () => {
    const agent = `a-${randomUUID()}`;
    const notifying = new AdmissionStore(pool, { leaseSeconds: 30, notify: true });
    // Opens at the first failure, and lets a probe through at once.
    const c = config({ breaker: { failureThreshold: 1, windowSeconds: 60, cooldownSeconds: 0 } });
    const attempt = async (failureClass: 'rate_limited' | 'succeeded') => {
      const k = key();
      assert.equal((await notifying.acquire(agent, k, 'w', c)).admitted, true);
      await notifying.release(agent, k, failureClass, c);
    };
    const opened = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM notifications WHERE type = 'breaker.opened' AND payload->>'agent' = $1`,
          [agent],
        )
      ).rows[0]?.n;
    await attempt('rate_limited');
    assert.equal((await breakerOf(agent))?.state, 'open');
    assert.equal(await opened(), 1);
    // Two probes fail: reopened twice, no new event.
    await attempt('rate_limited');
    await attempt('rate_limited');
    assert.equal((await breakerOf(agent))?.state, 'open');
    assert.equal(await opened(), 1);
    // The provider is back, then down again: a new outage, a new event.
    await attempt('succeeded');
    assert.equal((await breakerOf(agent))?.state, 'closed');
    await attempt('rate_limited');
    assert.equal(await opened(), 2);
  });
});
