import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { WorkerStore } from '../../src/store/worker-store';
import { agentHostGone } from '../../src/workers/agent-host-gone';
import { testEnv } from '../support/test-env';

type Heartbeat = { atMs: number; ageSeconds: number } | undefined;

/** A registry that answers `answers` in turn (the last one from then on); an Error is thrown. */
const registry = (answers: (Heartbeat | Error)[]) => {
  let asked = 0;
  return {
    asked: () => asked,
    lastAgentHeartbeat: async (): Promise<Heartbeat> => {
      const answer = answers[Math.min(asked++, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
};
const options = { pollMs: 10, lostAfterSeconds: 30 };

describe('agentHostGone', () => {
  it('says gone at once for a machine without an agent worker, or one silent for longer than the limit', async () => {
    assert.equal(await agentHostGone(registry([undefined]), options)('pod-a'), true);
    assert.equal(await agentHostGone(registry([{ atMs: 1000, ageSeconds: 31 }]), options)('pod-a'), true);
  });

  it('waits for a silent machine to pass the limit', async () => {
    const r = registry([
      { atMs: 1000, ageSeconds: 10 },
      { atMs: 1000, ageSeconds: 20 },
      { atMs: 1000, ageSeconds: 31 },
    ]);
    assert.equal(await agentHostGone(r, options)('pod-a'), true);
    assert.equal(r.asked(), 3);
  });

  it('says alive once a worker of the machine heartbeats anew (restarted in its pod)', async () => {
    const r = registry([
      { atMs: 1000, ageSeconds: 10 },
      { atMs: 1000, ageSeconds: 15 },
      { atMs: 9000, ageSeconds: 1 },
    ]);
    assert.equal(await agentHostGone(r, options)('pod-a'), false);
    assert.equal(r.asked(), 3);
  });

  it('says alive, the safe answer, when the registry cannot tell within the limit', async () => {
    const started = Date.now();
    const quick = { pollMs: 10, lostAfterSeconds: 0.1 };
    assert.equal(await agentHostGone(registry([new Error('database unavailable')]), quick)('pod-a'), false);
    assert.ok(Date.now() - started < 5000);
  });
});

describe('WorkerStore.lastAgentHeartbeat', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(async () => {
    await pool.query(`DELETE FROM workers WHERE host LIKE 'host-gone-test-%'`);
    await pool.end();
  });

  const register = (host: string, kind: string, ageSeconds: number, stopped = false) =>
    pool.query(
      `INSERT INTO workers (identity, kind, task_queue, host, pid, slot_mode, slots_total, state, heartbeat_at, stopped_at)
       VALUES ($1, $2, 'q', $3, 1, 'fixed', 1, 'RUNNING', clock_timestamp() - make_interval(secs => $4),
         CASE WHEN $5 THEN clock_timestamp() END)`,
      [`${kind}-${randomUUID()}@${host}`, kind, host, ageSeconds, stopped],
    );

  it("answers the newest heartbeat of the machine's agent workers that have not stopped", async () => {
    const store = new WorkerStore(pool);
    const host = `host-gone-test-${randomUUID()}`;
    assert.equal(await store.lastAgentHeartbeat(host), undefined, 'none registered');
    await register(host, 'workflow', 1);
    await register(host, 'agent', 1, true);
    assert.equal(await store.lastAgentHeartbeat(host), undefined, 'a workflow worker, and a stopped agent worker');
    await register(host, 'agent', 40);
    await register(host, 'agent', 20);
    const last = await store.lastAgentHeartbeat(host);
    assert.ok(last && last.ageSeconds >= 20 && last.ageSeconds < 25, JSON.stringify(last));
    assert.ok(Math.abs(Date.now() - 20_000 - last.atMs) < 5000, JSON.stringify(last));
  });
});
