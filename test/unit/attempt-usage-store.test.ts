import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { AttemptStore } from '../../src/store/attempt-store';
import { AttemptUsageStore, type AttemptUsage } from '../../src/store/attempt-usage-store';
import { countingPool } from '../support/counting-pool';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('AttemptUsageStore', () => {
  /** Its own agent name, so no other test's spend mixes in. */
  const agent = `usage-test-${randomUUID()}`;
  let pool: Pool;
  const statements: string[] = [];
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  /** A task with an open first attempt, and a usage store that counts its statements. */
  async function openAttempt(): Promise<{ taskId: string; usage: AttemptUsageStore }> {
    const taskId = await insertTask(pool, { prompt: 'p' });
    await new AttemptStore(pool).startAttempt({ taskId, attempt: 1, agent, worker: 'w' });
    return { taskId, usage: new AttemptUsageStore(countingPool(pool, statements)) };
  }

  const none = (taskId: string): AttemptUsage => ({
    taskId,
    attempt: 1,
    agent,
    costUsd: null,
    inputTokens: null,
    cachedInputTokens: null,
    outputTokens: null,
    turns: null,
    sessionId: null,
    resultText: null,
    resetAt: null,
  });

  it('writes nothing for an attempt whose output reported no usage', async () => {
    const { taskId, usage } = await openAttempt();
    statements.length = 0;
    await usage.record(none(taskId));
    assert.deepEqual(statements, []);
  });

  it('writes what an attempt reported, and its cost to the day', async () => {
    const { taskId, usage } = await openAttempt();
    await usage.record({
      ...none(taskId),
      costUsd: 0.25,
      inputTokens: 100,
      cachedInputTokens: 80,
      outputTokens: 12,
      sessionId: 's-1',
    });
    const row = (
      await pool.query<{
        cost_usd: string;
        input_tokens: string;
        cached_input_tokens: string;
        output_tokens: string;
        session_id: string;
      }>(
        'SELECT cost_usd, input_tokens, cached_input_tokens, output_tokens, session_id FROM attempts WHERE task_id = $1 AND number = 1',
        [taskId],
      )
    ).rows[0];
    assert.deepEqual(
      [
        Number(row?.cost_usd),
        Number(row?.input_tokens),
        Number(row?.cached_input_tokens),
        Number(row?.output_tokens),
        row?.session_id,
      ],
      [0.25, 100, 80, 12, 's-1'],
    );
    const spend = await pool.query<{ cost_usd: string }>('SELECT cost_usd FROM agent_spend WHERE agent = $1', [agent]);
    assert.deepEqual(
      spend.rows.map((r) => Number(r.cost_usd)),
      [0.25],
    );
  });

  it('counts the cost of an attempt closed while its agent ran, once', async () => {
    const own = `usage-test-${randomUUID()}`;
    const { taskId, usage } = await openAttempt();
    // Taken for lost (its worker cut off from Temporal), while the agent went on and finished.
    await new AttemptStore(pool).recordAttemptFailure({
      taskId,
      attempt: 1,
      agent: own,
      failureClass: 'crash',
      message: 'heartbeat timeout',
    });
    await usage.record({ ...none(taskId), agent: own, costUsd: 1 });
    await usage.record({ ...none(taskId), agent: own, costUsd: 1 });
    const spend = await pool.query<{ cost_usd: string }>('SELECT cost_usd FROM agent_spend WHERE agent = $1', [own]);
    assert.deepEqual(
      spend.rows.map((r) => Number(r.cost_usd)),
      [1],
    );
    const attempt = await pool.query<{ cost_usd: string; failure_class: string }>(
      'SELECT cost_usd, failure_class FROM attempts WHERE task_id = $1 AND number = 1',
      [taskId],
    );
    assert.deepEqual(
      attempt.rows.map((r) => [Number(r.cost_usd), r.failure_class]),
      [[1, 'crash']],
    );
  });
});
