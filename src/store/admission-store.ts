import type { Pool, PoolClient } from 'pg';
import { BREAKER_CLASSES, type AdmissionWait, type FailureClass } from '../../workflows/definitions';
import { prepared } from '../db/prepared';
import { inTransaction } from '../db/transaction';
import { retryTransient } from '../db/transient';
import { spentByTask, spentOnDayOf } from './spend-sql';
import { NOTIFICATION_TYPES } from '../notifications/notification-types';
import { enqueueNotification } from '../notifications/outbox';
import {
  afterOutcome,
  breakerGate,
  withProbe,
  type BreakerConfig,
  type BreakerState,
  type BreakerStateName,
} from '../gate/breaker';

/** An agent's cluster-wide limits and breaker settings, from its profile. */
export interface AgentGateConfig {
  maxConcurrent?: number;
  startsPerMinute?: number;
  breaker: BreakerConfig;
}

/** One attempt, as the gate knows it: `<task id>/<workflow run id>/<attempt>`. */
export interface AttemptKey {
  taskId: string;
  runId: string;
  attempt: number;
}

export const leaseKey = (k: AttemptKey): string => `${k.taskId}/${k.runId}/${k.attempt}`;

export type Admission = { admitted: true; probe: boolean } | { admitted: false; wait: AdmissionWait };

interface BreakerRow {
  state: BreakerStateName;
  failures: number;
  window_started_at: Date | null;
  opened_at: Date | null;
  open_until: Date | null;
  probe: string | null;
  now: Date;
}

const toState = (r: BreakerRow): BreakerState => ({
  state: r.state,
  failures: r.failures,
  windowStartedAt: r.window_started_at,
  openedAt: r.opened_at,
  openUntil: r.open_until,
  probe: r.probe,
});

const usd = (v: string | number | null | undefined): number => Number(v ?? 0);
const nextUtcMidnight = (now: Date): number => Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);

/** How often one process deletes an agent's long-expired leases and old starts (they are never counted). */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Admits an attempt of an agent without cluster-wide limits in one statement, when nothing can hold it
 * back: its breaker is closed and no budget is reached. Inserts (or extends) its lease and returns the
 * key; returns no row otherwise, and the locked path decides. The breaker row is share-locked, so a
 * state change (which takes FOR UPDATE) is ordered before or after this admission, never across it.
 * $1 agent, $2 lease key, $3 worker, $4 lease seconds, $5 task id.
 */
const ADMIT_UNLIMITED = `
  WITH breaker AS (
    SELECT clock_timestamp() AS now FROM agent_breakers WHERE agent = $1 AND state = 'closed' FOR KEY SHARE
  )
  INSERT INTO agent_leases (key, agent, worker, acquired_at, expires_at)
  SELECT $2, $1, $3, breaker.now, breaker.now + make_interval(secs => $4)
  FROM breaker
  WHERE NOT EXISTS (
      SELECT 1 FROM budget WHERE daily_usd IS NOT NULL AND daily_usd <=
        ${spentOnDayOf('breaker.now')})
    AND NOT EXISTS (
      SELECT 1 FROM tasks WHERE id = $5 AND budget_usd IS NOT NULL AND budget_usd <=
        ${spentByTask('$5')})
  ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
  RETURNING key`;

/**
 * Extends a running attempt's lease, or takes it again when it is gone (swept after it lapsed); `live`:
 * whether it had not lapsed. $1 lease key, $2 agent, $3 worker, $4 lease seconds.
 */
const RENEW = `
  WITH before AS (SELECT expires_at > clock_timestamp() AS live FROM agent_leases WHERE key = $1)
  INSERT INTO agent_leases (key, agent, worker, acquired_at, expires_at)
  VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp() + make_interval(secs => $4))
  ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
  RETURNING COALESCE((SELECT live FROM before), false) AS live`;

/**
 * Removes the lease of an attempt whose outcome leaves the breaker as it is (see afterOutcome): a
 * success, or a failure of a class the breaker does not count, of an attempt that is not the probe.
 * `unchanged` false: nothing was removed, and the locked path must release it.
 * $1 agent, $2 lease key.
 */
const RELEASE_NOT_PROBE = `
  WITH breaker AS (SELECT probe IS DISTINCT FROM $2 AS unchanged FROM agent_breakers WHERE agent = $1),
  removed AS (DELETE FROM agent_leases WHERE key = $2 AND (SELECT unchanged FROM breaker) RETURNING key)
  SELECT COALESCE((SELECT unchanged FROM breaker), false) AS unchanged`;

/**
 * The gate every gated attempt passes before its agent starts: budgets, the agent's circuit breaker,
 * and its cluster-wide limits, all kept in PostgreSQL so that every agent worker sees the same state
 * and it survives restarts. An admitted attempt holds a lease that the agent worker renews while the
 * agent runs; a dead worker's lease expires and its slot frees itself. Times come from the database
 * clock, not the workers'.
 *
 * Two paths, the same answers. The common case is one statement each way: an agent without limits,
 * its breaker closed and no budget reached, is admitted by ADMIT_UNLIMITED (under a share lock of the
 * agent's row), and a release that leaves the breaker as it is only removes the lease. Everything else
 * (limits, an open or half-open breaker, a budget reached, a failure the breaker counts) runs in one
 * transaction under the agent's row lock, so two workers can never both take the last slot and every
 * breaker change sees the one before it. Starts are recorded only for agents with a start-rate limit,
 * the only thing that counts them.
 */
export class AdmissionStore {
  /** How long a slot's lease lasts without renewal; a running attempt renews it well within that. */
  readonly leaseSeconds: number;
  private readonly notify: boolean;
  /** When this process last swept each agent's expired leases and old starts. */
  private readonly sweptAt = new Map<string, number>();

  /** `notify`: enqueue webhook notifications when a breaker opens or the daily budget is reached. */
  constructor(
    private readonly pool: Pool,
    opts: { leaseSeconds?: number; notify?: boolean } = {},
  ) {
    this.leaseSeconds = opts.leaseSeconds ?? 30;
    this.notify = opts.notify ?? false;
  }

  private transaction<T>(work: (db: PoolClient) => Promise<T>): Promise<T> {
    return retryTransient(() => inTransaction(this.pool, work));
  }

  /** Locks the agent's row (creating it on first use) and reads its breaker and the database time. */
  private async lockAgent(db: PoolClient, agent: string): Promise<BreakerRow> {
    const lock = () =>
      db.query<BreakerRow>(
        `SELECT state, failures, window_started_at, opened_at, open_until, probe, clock_timestamp() AS now
         FROM agent_breakers WHERE agent = $1 FOR UPDATE`,
        [agent],
      );
    const found = (await lock()).rows[0];
    if (found) return found;
    await db.query('INSERT INTO agent_breakers (agent) VALUES ($1) ON CONFLICT DO NOTHING', [agent]);
    return (await lock()).rows[0] as BreakerRow;
  }

  /**
   * Deletes the agent's leases expired for ten minutes and its starts older than two, at most once a
   * minute per process: neither is ever counted (counts look at live leases and the last minute), so
   * this only keeps the tables small. Best effort: the next sweep catches what this one missed.
   */
  private async sweep(agent: string): Promise<void> {
    const last = this.sweptAt.get(agent);
    if (last !== undefined && Date.now() - last < SWEEP_INTERVAL_MS) return;
    this.sweptAt.set(agent, Date.now());
    await this.pool
      .query(
        `WITH leases AS (
           DELETE FROM agent_leases WHERE agent = $1 AND expires_at < clock_timestamp() - interval '10 minutes'
         )
         DELETE FROM agent_starts WHERE agent = $1 AND started_at < clock_timestamp() - interval '2 minutes'`,
        [agent],
      )
      .catch(() => undefined);
  }

  private async saveBreaker(db: PoolClient, agent: string, b: BreakerState): Promise<void> {
    await db.query(
      `UPDATE agent_breakers SET state = $2, failures = $3, window_started_at = $4, opened_at = $5, open_until = $6,
         probe = $7, updated_at = clock_timestamp()
       WHERE agent = $1`,
      [agent, b.state, b.failures, b.windowStartedAt, b.openedAt, b.openUntil, b.probe],
    );
  }

  /**
   * Admits the attempt or says why not. Asking again for an attempt already admitted (a retried
   * activity) admits it again without counting it twice.
   */
  async acquire(agent: string, key: AttemptKey, worker: string, config: AgentGateConfig): Promise<Admission> {
    await this.sweep(agent);
    const unlimited = config.maxConcurrent === undefined && config.startsPerMinute === undefined;
    if (unlimited) {
      const admitted = await retryTransient(() =>
        this.pool.query(prepared(ADMIT_UNLIMITED, [agent, leaseKey(key), worker, this.leaseSeconds, key.taskId])),
      );
      if (admitted.rowCount === 1) return { admitted: true, probe: false };
    }
    return this.acquireLocked(agent, key, worker, config);
  }

  /** The whole gate, under the agent's row lock: every check, and the wait that holds the attempt back. */
  private async acquireLocked(
    agent: string,
    key: AttemptKey,
    worker: string,
    config: AgentGateConfig,
  ): Promise<Admission> {
    const lease = leaseKey(key);
    return this.transaction(async (db) => {
      const row = await this.lockAgent(db, agent);
      const now = row.now;
      // A lease that lapsed was not counted meanwhile: its attempt passes the whole gate again.
      const held = await db.query(
        'UPDATE agent_leases SET expires_at = $2 WHERE key = $1 AND expires_at > $3 RETURNING key',
        [lease, new Date(now.getTime() + this.leaseSeconds * 1000), now],
      );
      if (held.rowCount === 1) return { admitted: true, probe: row.probe === lease };

      const wait = (kind: AdmissionWait['kind'], message: string, until: number | null): Admission => ({
        admitted: false,
        wait: { kind, agent, message, until },
      });

      const budget = await db.query<{ daily_usd: string | null; spent: string }>(
        `SELECT b.daily_usd,
           ${spentOnDayOf('$1::timestamptz')} AS spent
         FROM budget b`,
        [now],
      );
      const daily = budget.rows[0];
      if (daily && daily.daily_usd !== null && usd(daily.spent) >= usd(daily.daily_usd)) {
        if (this.notify) {
          // Asked again and again while tasks wait: the key makes it one notification per UTC day.
          const day = now.toISOString().slice(0, 10);
          await enqueueNotification(db, {
            type: NOTIFICATION_TYPES.budgetReached,
            dedupeKey: `budget.reached:${day}`,
            data: {
              day,
              dailyUsd: usd(daily.daily_usd),
              spentUsd: usd(daily.spent),
              resetsAt: new Date(nextUtcMidnight(now)).toISOString(),
            },
          });
        }
        return wait(
          'daily_budget',
          `today's spend $${usd(daily.spent).toFixed(4)} has reached the daily budget of $${usd(daily.daily_usd)}`,
          nextUtcMidnight(now),
        );
      }
      const task = await db.query<{ budget_usd: string | null; spent: string }>(
        `SELECT budget_usd, ${spentByTask('$1')} AS spent
         FROM tasks WHERE id = $1`,
        [key.taskId],
      );
      const taskBudget = task.rows[0]?.budget_usd ?? null;
      if (taskBudget !== null) {
        const taskBudgetUsd = usd(taskBudget);
        const taskSpent = usd(task.rows[0]?.spent);
        if (taskSpent >= taskBudgetUsd) {
          return wait(
            'task_budget',
            `the task has spent $${taskSpent.toFixed(4)} of its budget of $${taskBudgetUsd}`,
            null,
          );
        }
      }

      const breaker = toState(row);
      const probeAlive =
        breaker.probe !== null &&
        (await db.query('SELECT 1 FROM agent_leases WHERE key = $1 AND expires_at > $2', [breaker.probe, now]))
          .rowCount === 1;
      const gate = breakerGate(breaker, now, lease, probeAlive);
      if (gate.kind === 'open') {
        return wait(
          'breaker_open',
          gate.until
            ? `circuit breaker open until ${gate.until.toISOString()}`
            : 'circuit breaker half-open: a probe is running',
          gate.until ? gate.until.getTime() : null,
        );
      }

      if (config.maxConcurrent !== undefined) {
        const running = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM agent_leases WHERE agent = $1 AND expires_at > $2',
          [agent, now],
        );
        if ((running.rows[0]?.n ?? 0) >= config.maxConcurrent) {
          return wait('concurrency', `${config.maxConcurrent} run(s) of ${agent} at once already`, null);
        }
      }
      if (config.startsPerMinute !== undefined) {
        const starts = await db.query<{ n: number; oldest: Date | null }>(
          `SELECT count(*)::int AS n, min(started_at) AS oldest FROM agent_starts
           WHERE agent = $1 AND started_at > $2::timestamptz - interval '1 minute'`,
          [agent, now],
        );
        const { n = 0, oldest = null } = starts.rows[0] ?? {};
        if (n >= config.startsPerMinute) {
          return wait(
            'start_rate',
            `${config.startsPerMinute} start(s) of ${agent} in the last minute already`,
            oldest ? oldest.getTime() + 60_000 : null,
          );
        }
      }

      await db.query(
        `INSERT INTO agent_leases (key, agent, worker, acquired_at, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
        [lease, agent, worker, now, new Date(now.getTime() + this.leaseSeconds * 1000)],
      );
      if (config.startsPerMinute !== undefined) {
        await db.query(
          'INSERT INTO agent_starts (key, agent, started_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING',
          [lease, agent, now],
        );
      }
      if (gate.kind === 'probe') await this.saveBreaker(db, agent, withProbe(breaker, lease));
      return { admitted: true, probe: gate.kind === 'probe' };
    });
  }

  /**
   * Keeps the attempt's slot while its agent runs. A lease that lapsed (the database out of reach for
   * longer than a lease, say) is taken again, swept or not, so the running agent counts from now on
   * and its release tells the breaker how it ended; answers false then: meanwhile its slot may have
   * gone to another attempt, and the agent's limits may be exceeded until a run ends. Never call it
   * once the release may have begun: it would take the slot again.
   */
  async renew(agent: string, key: AttemptKey, worker: string): Promise<boolean> {
    const renewed = await retryTransient(() =>
      this.pool.query<{ live: boolean }>(prepared(RENEW, [leaseKey(key), agent, worker, this.leaseSeconds])),
    );
    return renewed.rows[0]?.live === true;
  }

  /**
   * Removes the attempt's lease, and nothing else: a renewal that landed after the attempt's release
   * took its slot again.
   */
  async dropLease(key: AttemptKey): Promise<void> {
    await retryTransient(() => this.pool.query('DELETE FROM agent_leases WHERE key = $1', [leaseKey(key)]));
  }

  /**
   * Frees the attempt's slot and tells the agent's breaker how it ended. Only the call that removes
   * the lease updates the breaker, so a repeated release counts nothing twice. Answers whether it
   * closed a half-open breaker (the probe succeeded): then the tasks waiting for it should be woken.
   */
  async release(
    agent: string,
    key: AttemptKey,
    failureClass: FailureClass,
    config: AgentGateConfig,
    resetAt?: Date | null,
  ): Promise<boolean> {
    const lease = leaseKey(key);
    if (!BREAKER_CLASSES.includes(failureClass)) {
      const res = await retryTransient(() =>
        this.pool.query<{ unchanged: boolean }>(prepared(RELEASE_NOT_PROBE, [agent, lease])),
      );
      // Removed, or already gone (a repeated release): either way the breaker stays as it is.
      if (res.rows[0]?.unchanged) return false;
    }
    return this.transaction(async (db) => {
      const row = await this.lockAgent(db, agent);
      const removed = await db.query('DELETE FROM agent_leases WHERE key = $1', [lease]);
      if (removed.rowCount !== 1) return false;
      const before = toState(row);
      const after = afterOutcome(before, failureClass, lease, row.now, config.breaker, resetAt);
      if (after !== before) await this.saveBreaker(db, agent, after);
      // Once per outage: from closed to open. A probe that fails reopens a half-open breaker, every
      // cooldown while the provider stays down: that is the same outage, not a new event.
      if (this.notify && after.state === 'open' && before.state === 'closed' && after.openedAt) {
        const openedAt = after.openedAt.toISOString();
        await enqueueNotification(db, {
          type: NOTIFICATION_TYPES.breakerOpened,
          dedupeKey: `breaker.opened:${agent}:${openedAt}`,
          data: {
            agent,
            failureClass,
            failures: after.failures,
            openedAt,
            openUntil: after.openUntil?.toISOString() ?? null,
          },
        });
      }
      return before.state === 'half_open' && after.state === 'closed';
    });
  }
}
