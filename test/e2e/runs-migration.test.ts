import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Pool } from 'pg';
import { MIGRATIONS_DIR, ensureDatabase, migrate } from '../../src/db/migrate';
import { testEnv } from '../support/test-env';

const RUNS_MIGRATION = '0004_runs.sql';

/**
 * Migration 0004 on a database that already holds tasks from before runs existed: everything becomes
 * run 1, and the per-task keys become per-run keys (one terminal event per run).
 */
describe('migration 0004_runs', { timeout: 60_000 }, () => {
  const name = `atelier_runs_migration_${process.pid}`;
  let url: string;
  let dir: string;
  let pool: Pool;

  const admin = async (sql: string): Promise<void> => {
    const base = new URL(testEnv.databaseUrl);
    base.pathname = '/postgres';
    const client = new Client({ connectionString: base.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  before(async () => {
    const target = new URL(testEnv.databaseUrl);
    target.pathname = `/${name}`;
    url = target.toString();
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await ensureDatabase(url);
    // Only the migrations before 0004.
    dir = mkdtempSync(join(tmpdir(), 'atelier-migrations-'));
    for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_/.test(f) && f < RUNS_MIGRATION)) {
      copyFileSync(join(MIGRATIONS_DIR, file), join(dir, file));
    }
    await migrate(url, dir);
    pool = new Pool({ connectionString: url, max: 2 });
  });

  after(async () => {
    await pool?.end();
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps existing tasks as their first run and makes the keys per run', async () => {
    const id = randomUUID();
    await pool.query(
      `INSERT INTO tasks (id, status, prompt, agent, timeout_seconds, max_attempts, priority, workflow_id, run_id,
         finished_at, error_class, error_message)
       VALUES ($1, 'failed', 'p', 'echo', 60, 1, 3, $2, 'run-a', now(), 'nonzero_exit', 'agent exited with code 1')`,
      [id, `task-${id}`],
    );
    await pool.query(
      `INSERT INTO attempts (task_id, number, agent, finished_at, failure_class) VALUES ($1, 1, 'echo', now(), 'nonzero_exit')`,
      [id],
    );
    await pool.query(
      `INSERT INTO task_logs (task_id, attempt, seq, stream, data) VALUES ($1, 1, 0, 'stderr', 'boom')`,
      [id],
    );
    await pool.query(
      `INSERT INTO task_events (task_id, kind, attempt, terminal) VALUES ($1, 'submitted', 0, false), ($1, 'failed', 1, true)`,
      [id],
    );

    // 0004 applies next; later migrations may follow it.
    assert.equal((await migrate(url))[0], '0004_runs');

    const runs = (await pool.query('SELECT number, run_id, kind FROM task_runs WHERE task_id = $1', [id])).rows;
    assert.deepEqual(runs, [{ number: 1, run_id: 'run-a', kind: 'submitted' }]);
    assert.equal((await pool.query('SELECT current_run FROM tasks WHERE id = $1', [id])).rows[0].current_run, 1);
    for (const table of ['attempts', 'task_logs', 'task_events']) {
      const rows = (await pool.query(`SELECT DISTINCT run FROM ${table} WHERE task_id = $1`, [id])).rows;
      assert.deepEqual(rows, [{ run: 1 }], `${table} rows belong to run 1`);
    }

    // A second run may reuse attempt numbers, log sequences and event kinds, and has its own terminal event.
    await pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 2, 'run-b', 'retry')`, [id]);
    await pool.query(`INSERT INTO attempts (task_id, run, number, agent) VALUES ($1, 2, 1, 'echo')`, [id]);
    await pool.query(
      `INSERT INTO task_logs (task_id, run, attempt, seq, stream, data) VALUES ($1, 2, 1, 0, 'stdout', 'ok')`,
      [id],
    );
    await pool.query(
      `INSERT INTO task_events (task_id, run, kind, attempt, terminal) VALUES ($1, 2, 'succeeded', 1, true)`,
      [id],
    );
    // …but still only one terminal event per run, and one row per key within a run.
    await assert.rejects(
      pool.query(`INSERT INTO task_events (task_id, run, kind, attempt, terminal) VALUES ($1, 2, 'failed', 1, true)`, [
        id,
      ]),
      /task_events_one_terminal_per_run/,
    );
    await assert.rejects(
      pool.query(`INSERT INTO attempts (task_id, run, number, agent) VALUES ($1, 2, 1, 'echo')`, [id]),
      /attempts_pkey/,
    );
    await assert.rejects(
      pool.query(`INSERT INTO task_runs (task_id, number, run_id, kind) VALUES ($1, 3, 'run-b', 'retry')`, [id]),
      /task_runs_task_id_run_id_key/,
    );
  });
});
