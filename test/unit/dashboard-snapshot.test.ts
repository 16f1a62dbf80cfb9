import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { Pool, type PoolClient, type QueryConfig } from 'pg';
import { DashboardController } from '../../src/api/dashboard/dashboard.controller';
import { DashboardService } from '../../src/api/dashboard/dashboard.service';
import { STATEMENT_TIMEOUT_MS } from '../../src/db/bounded-query';
import { loadConfig } from '../../src/config/env';
import { createPool } from '../../src/db/pool';
import { ROLLBACK_TIMEOUT_MS } from '../../src/db/transaction';
import { startCuttableProxy } from '../support/cuttable-proxy';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';
import { within } from '../support/wait-for';

/** What a snapshot did with its pool: the statements on the connections it took, and how. */
interface PoolUse {
  statements: string[];
  connections: number;
  /** Statements given to the pool itself, each on a connection of its own. */
  poolStatements: number;
  /** The most statements one connection was given before the previous one had answered. */
  mostAtOnce: number;
}

/**
 * `pool`, recording how it is used; `afterStatement(n, db)` runs after a connection's statement n
 * (from 1) has answered, before that statement's caller goes on.
 */
function recordingPool(
  pool: Pool,
  afterStatement: (n: number, db: PoolClient) => Promise<void> = async () => undefined,
): { pool: Pool; use: PoolUse } {
  const use: PoolUse = { statements: [], connections: 0, poolStatements: 0, mostAtOnce: 0 };
  const recording = Object.create(pool, {
    query: { value: (...args: Parameters<Pool['query']>) => (use.poolStatements++, pool.query(...args)) },
    connect: {
      value: async () => {
        use.connections++;
        const db = await pool.connect();
        let n = 0;
        let atOnce = 0;
        return Object.create(db, {
          query: {
            value: async (statement: string | QueryConfig, ...rest: unknown[]) => {
              use.statements.push(typeof statement === 'string' ? statement : statement.text);
              use.mostAtOnce = Math.max(use.mostAtOnce, ++atOnce);
              try {
                return await (db.query as (...a: unknown[]) => Promise<unknown>)(statement, ...rest);
              } finally {
                atOnce--;
                await afterStatement(++n, db);
              }
            },
          },
        }) as PoolClient;
      },
    },
  }) as Pool;
  return { pool: recording, use };
}

describe('GET /v1/dashboard', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 20 });
  });
  after(() => pool.end());

  /** The endpoint over `pool`. No Temporal: its queue descriptions fail, harmlessly. */
  const dashboard = (over: Pool): DashboardController =>
    new DashboardController(new DashboardService(loadConfig({}), over, {} as Client));

  it("shares one snapshot's queries among callers at once, whatever their number", async () => {
    const alone = recordingPool(pool);
    await dashboard(alone.pool).snapshot();
    assert.ok(alone.use.statements.length > 1, 'a snapshot takes several statements');

    const many = recordingPool(pool);
    const controller = dashboard(many.pool);
    const answers = await Promise.all(Array.from({ length: 20 }, () => controller.snapshot()));
    assert.equal(many.use.statements.length, alone.use.statements.length, '20 callers cost the statements of one');
    assert.equal(many.use.connections, 1);
    assert.equal(new Set(answers).size, 1, 'they all get the same snapshot');
  });

  it('reads PostgreSQL on one connection, a statement at a time, as of one moment', async () => {
    let isolation: unknown;
    let newTask: string | undefined;
    const { pool: recording, use } = recordingPool(pool, async (n, db) => {
      if (n !== 2) return;
      // The transaction's first statement has answered: its moment is fixed. A task stored now, on
      // another connection, must show in none of the statements that follow.
      isolation = (
        await db.query(`SELECT current_setting('transaction_isolation') AS level,
                               current_setting('transaction_read_only') AS read_only`)
      ).rows[0];
      newTask = await insertTask(pool, { prompt: 'stored while a snapshot is read' });
    });
    try {
      const snapshot = await dashboard(recording).snapshot();
      assert.ok(newTask, 'a task was stored during the snapshot');
      assert.deepEqual(isolation, { level: 'repeatable read', read_only: 'on' });
      assert.equal(use.connections, 1, 'one connection of the pool');
      assert.equal(use.poolStatements, 0, 'no statement on a connection of its own');
      assert.equal(use.mostAtOnce, 1, 'one statement after another');
      assert.equal(use.statements.at(-1), 'COMMIT');
      assert.equal(
        snapshot.recent.some((t) => t.id === newTask),
        false,
        'the newest tasks were read as of the snapshot’s moment',
      );
      const later = await dashboard(pool).snapshot();
      assert.ok(
        later.recent.some((t) => t.id === newTask),
        'the next snapshot shows the task',
      );
    } finally {
      if (newTask) await pool.query('DELETE FROM tasks WHERE id = $1', [newTask]);
    }
  });

  it('lists registered workers by their heartbeats: a busy agent worker that does not poll is healthy', async () => {
    const tag = `dashboard-test-${process.pid}-${Date.now()}`;
    const rows: [string, string, string, string | null][] = [
      // identity, state, heartbeat age, stopped
      [`${tag}-busy`, 'RUNNING', '2 seconds', null],
      [`${tag}-lost`, 'RUNNING', '60 seconds', null],
      [`${tag}-draining`, 'DRAINING', '2 seconds', null],
      [`${tag}-starting`, 'INITIALIZED', '2 seconds', null],
      [`${tag}-stopped`, 'STOPPED', '2 seconds', '1 second'],
      [`${tag}-gone`, 'RUNNING', '10 minutes', null],
    ];
    for (const [identity, state, age, stopped] of rows) {
      await pool.query(
        `INSERT INTO workers (identity, kind, task_queue, host, pid, slot_mode, slots_total, slots_used, state,
           heartbeat_at, stopped_at)
         VALUES ($1, 'agent', 'test-agents', 'test-host', 1, 'fixed', 2, 2, $2,
           clock_timestamp() - $3::interval, clock_timestamp() - $4::interval)`,
        [identity, state, age, stopped],
      );
    }
    // Temporal lists the pollers of the agent queue: one that just polled, and one stopped a moment ago.
    const polledAt = { seconds: Math.floor(Date.now() / 1000) };
    const pollers = [`${tag}-starting`, `${tag}-stopped`, `${tag}-unregistered`].map((identity) => ({
      identity,
      lastAccessTime: polledAt,
    }));
    const temporal = {
      connection: { withDeadline: (_: number, fn: () => unknown) => fn() },
      workflowService: {
        describeTaskQueue: async ({ taskQueueType }: { taskQueueType: number }) => ({
          pollers: taskQueueType === 2 ? pollers : [],
        }),
      },
    } as unknown as Client;
    try {
      const snapshot = await new DashboardService(loadConfig({}), pool, temporal).current();
      const shown = snapshot.workers
        .filter((w) => w.identity.startsWith(tag))
        .map((w) => [w.identity.slice(tag.length + 1), w.role, w.taskQueue, w.healthy]);
      assert.deepEqual(shown, [
        ['busy', 'agents', 'test-agents', true],
        ['draining', 'agents', 'test-agents', false],
        ['lost', 'agents', 'test-agents', false],
        ['starting', 'agents', 'test-agents', true],
        ['unregistered', 'agents', 'atelier-agents', true],
      ]);
    } finally {
      await pool.query('DELETE FROM workers WHERE identity LIKE $1', [`${tag}-%`]);
    }
  });

  it('rolls back and gives the connection back when a statement fails, and fails the snapshot', async () => {
    const { pool: failing, use } = recordingPool(pool, async (n) => {
      if (n === 3) throw new Error('the database went away');
    });
    await assert.rejects(dashboard(failing).snapshot(), /the database went away/);
    assert.equal(use.statements.at(-1), 'ROLLBACK');
    assert.equal(pool.totalCount - pool.idleCount, 0, 'no connection is left checked out');
  });

  it('fails a snapshot whose statement PostgreSQL never answers, frees its connection, and computes the next one anew', async () => {
    // PostgreSQL behind a proxy that silences the snapshot's connection after its second statement, as a
    // failover that leaves connections open and silent does; new connections still pass.
    const proxy = await startCuttableProxy(new URL(testEnv.databaseUrl).host);
    const url = new URL(testEnv.databaseUrl);
    url.host = proxy.address;
    const proxied = createPool(url.toString(), () => undefined);
    let cut = false;
    const { pool: silenced, use } = recordingPool(proxied, async (n) => {
      if (n !== 2 || cut) return;
      cut = true;
      proxy.cutWhere('AS cursor FROM task_events');
    });
    try {
      const service = new DashboardService(loadConfig({}), silenced, {} as Client);
      const started = Date.now();
      // The statement's deadline, then the ROLLBACK's, queued behind the unanswered statement.
      const deadline = STATEMENT_TIMEOUT_MS + ROLLBACK_TIMEOUT_MS + 2000;
      await assert.rejects(within('the snapshot', deadline, service.current()), /Query read timeout/);
      const took = Date.now() - started;
      assert.ok(took >= STATEMENT_TIMEOUT_MS, `failed after ${took} ms, before the statement's deadline`);
      assert.equal(use.statements.at(-1), 'ROLLBACK');
      assert.equal(proxied.totalCount - proxied.idleCount, 0, 'the silent connection is not left checked out');

      const next = await service.current();
      assert.equal(use.connections, 2, 'the next snapshot is computed anew, on a new connection');
      assert.equal(next.series.minutes.length, 60);
      assert.equal(proxied.totalCount - proxied.idleCount, 0);
    } finally {
      await proxy.close();
      await proxied.end();
    }
  });
});
