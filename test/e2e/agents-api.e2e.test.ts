import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { call, getTask, submit, waitForEnd, type ErrorBody, type TaskView } from '../support/http-api';
import { answerSchema, openApiDoc, resolve as resolveSchema, type Schema } from '../support/openapi';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-database';
import { startStack, type Stack } from '../support/stack';
import { waitFor } from '../support/wait-for';

interface ChainTaskView extends TaskView {
  agents: string[];
  budgetUsd: number | null;
  costUsd: number | null;
  waitingReason: { kind: string; agent: string; message: string; until: string | null } | null;
  attempts: (TaskView['attempts'][number] & {
    costUsd: number | null;
    inputTokens: number | null;
    cachedInputTokens: number | null;
    outputTokens: number | null;
    sessionId: string | null;
  })[];
  result:
    | (NonNullable<TaskView['result']> & {
        agent: string;
        costUsd: number | null;
        inputTokens: number | null;
        cachedInputTokens: number | null;
        outputTokens: number | null;
        sessionId: string | null;
      })
    | null;
}

interface AgentView {
  name: string;
  output: string;
  fallback: string[];
  breaker: { state: string; openUntil: string | null; failures: number; failureThreshold: number };
  running: number;
  maxConcurrent: number | null;
  successRate: { window: string; finished: number; succeeded: number; rate: number | null };
  spendTodayUsd: number;
}

interface BudgetView {
  dailyUsd: number | null;
  spentTodayUsd: number;
  remainingUsd: number | null;
  day: string;
  resetsAt: string;
}

/**
 * Fallback chains, agents and budgets over HTTP, against the whole service. The stack has a database
 * of its own: the daily budget is global to a database, and must not hold back other tests.
 */
describe('agents, chains and budgets over HTTP', { timeout: 120_000 }, () => {
  let db: ScratchDatabase;
  let stack: Stack;

  before(async () => {
    db = await createScratchDatabase('agents_api');
    stack = await startStack({ DATABASE_URL: db.url, ATELIER_WAIT_RECHECK_SECONDS: '0.2' });
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
  });

  const task = async (id: string): Promise<ChainTaskView> => (await getTask(stack.baseUrl, id)) as ChainTaskView;
  const waitingFor = (id: string, kind: string) =>
    waitFor(`task ${id} to wait for ${kind}`, async () => {
      const t = await task(id);
      return t.status === 'queued' && t.waitingReason?.kind === kind ? t : undefined;
    });

  it('describes what the agents and budget endpoints answer, field for field, in the API description', async () => {
    const doc = await openApiDoc(stack.baseUrl);
    const resolve = (schema: Schema | undefined): Schema => resolveSchema(doc, schema);
    const answerOf = (path: string, method: string): Schema => answerSchema(doc, path, method, '200');
    const fields = (schema: Schema): string[] => Object.keys(schema.properties ?? {}).sort();
    const keys = (value: unknown): string[] => Object.keys(value as object).sort();

    const budget = (await call(stack.baseUrl, 'GET', '/v1/budget')).json;
    assert.deepEqual(fields(answerOf('/v1/budget', 'get')), keys(budget));
    assert.deepEqual(fields(answerOf('/v1/budget', 'put')), keys(budget));
    // As the task budget test below gets it, and its 409 for an ended task.
    assert.deepEqual(fields(answerOf('/v1/tasks/{id}/budget', 'put')), ['budgetUsd', 'costUsd', 'id']);
    assert.match(doc.paths['/v1/tasks/{id}/budget']?.put?.responses['409']?.description ?? '', /ended/);
    const list = (await call(stack.baseUrl, 'GET', '/v1/agents')).json as { items: AgentView[] };
    const listed = answerOf('/v1/agents', 'get');
    assert.deepEqual(fields(listed), keys(list));
    const item = resolve(listed.properties?.items?.items);
    const agent = list.items[0] as AgentView;
    assert.deepEqual(fields(item), keys(agent));
    assert.deepEqual(fields(resolve(item.properties?.breaker)), keys(agent.breaker));
    assert.deepEqual(fields(resolve(item.properties?.successRate)), keys(agent.successRate));
    const reset = (await call(stack.baseUrl, 'POST', `/v1/agents/${agent.name}/breaker/reset`)).json;
    assert.deepEqual(fields(answerOf('/v1/agents/{name}/breaker/reset', 'post')), keys(reset));
    // The 400 names every rule the body is checked by.
    const refused = doc.paths['/v1/budget']?.put?.responses['400']?.description ?? '';
    for (const rule of ['missing', 'below 0', '99,999,999.999999', '6 decimal places'])
      assert.ok(refused.includes(rule), rule);
  });

  it('refuses bad chains and budgets, naming the field', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ agents: ['chain-a', 'nope'] }, 'agents', /unknown agent\(s\) "nope"/],
      [{ agents: ['chain-a', 'chain-a'] }, 'agents', /must not name an agent twice/],
      [{ agents: [] }, 'agents', /at least 1/],
      [{ agents: Array.from({ length: 11 }, (_, i) => `a${i}`) }, 'agents', /no more than 10/],
      [{ agents: ['chain-b'], agent: 'chain-a' }, 'agents', /must start with agent "chain-a"/],
      [{ agents: 'chain-a' }, 'agents', /must be an array/],
      [{ budgetUsd: -1 }, 'budgetUsd', /must not be less than 0/],
      [{ budgetUsd: 'ten' }, 'budgetUsd', /number/],
      [{ budgetUsd: 1e-7 }, 'budgetUsd', /at most 6 decimal places/],
      [{ budgetUsd: 0.1234567 }, 'budgetUsd', /at most 6 decimal places/],
    ];
    for (const [fields, field, problem] of cases) {
      const res = await call(stack.baseUrl, 'POST', '/v1/tasks', { body: { prompt: 'p', ...fields } });
      assert.equal(res.status, 400, `${JSON.stringify(fields)}: ${res.text}`);
      const named = (res.json as ErrorBody).fields?.find((f) => f.field === field);
      assert.ok(named, `${JSON.stringify(fields)} names ${field}: ${res.text}`);
      assert.ok(
        named.problems.some((p) => problem.test(p)),
        `${JSON.stringify(fields)}: ${named.problems.join('; ')}`,
      );
    }
  });

  it('runs a task along its chain: each hop an attempt with its class, cost and session; the result names its agent', async () => {
    const { id } = await submit(stack.baseUrl, {
      prompt: '@when a @fail auth\n@session sess-b\n@usage 2000 400 500\n@print done by b',
      agent: 'chain-a',
    });
    const done = (await waitForEnd(stack.baseUrl, id)) as ChainTaskView;
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.deepEqual(done.agents, ['chain-a', 'chain-b', 'chain-c'], "the profile's default chain");
    assert.deepEqual(
      done.attempts.map((a) => [a.number, a.agent, a.failureClass]),
      [
        [1, 'chain-a', 'auth'],
        [2, 'chain-b', 'succeeded'],
      ],
    );
    const [, hop] = done.attempts;
    assert.equal(hop?.costUsd, 0.0065);
    assert.equal(hop?.inputTokens, 2000);
    assert.equal(hop?.cachedInputTokens, 500);
    assert.equal(hop?.outputTokens, 400);
    assert.equal(hop?.sessionId, 'sess-b');
    // The answer Codex gave, not its JSON lines.
    assert.deepEqual(done.result, {
      output: 'done by b',
      exitCode: 0,
      agent: 'chain-b',
      costUsd: 0.0065,
      inputTokens: 2000,
      cachedInputTokens: 500,
      outputTokens: 400,
      turns: 1,
      sessionId: 'sess-b',
    });
    assert.equal(done.costUsd, 0.0065);
  });

  it('takes an explicit chain and a task budget', async () => {
    const { id } = await submit(stack.baseUrl, {
      prompt: '@print fine',
      agents: ['chain-c', 'chain-a'],
      budgetUsd: 2.5,
    });
    const done = (await waitForEnd(stack.baseUrl, id)) as ChainTaskView;
    assert.equal(done.agent, 'chain-c');
    assert.deepEqual(done.agents, ['chain-c', 'chain-a']);
    assert.equal(done.budgetUsd, 2.5);
    assert.equal(done.result?.agent, 'chain-c');
  });

  it('lists the agents with their breaker, running count against the limit, success rate and spend today', async () => {
    const res = await call(stack.baseUrl, 'GET', '/v1/agents');
    assert.equal(res.status, 200, res.text);
    const { defaultAgent, items } = res.json as { defaultAgent: string; items: AgentView[] };
    assert.equal(defaultAgent, 'stand-in');
    const byName = new Map(items.map((a) => [a.name, a]));
    const a = byName.get('chain-a');
    const b = byName.get('chain-b');
    assert.ok(a && b);
    assert.deepEqual(a.fallback, ['chain-b', 'chain-c']);
    assert.equal(a.output, 'claude-stream-json');
    assert.equal(a.breaker.state, 'closed');
    assert.equal(a.breaker.failureThreshold, 1000);
    assert.ok(a.successRate.finished >= 1 && a.successRate.rate !== null && a.successRate.rate < 1, JSON.stringify(a));
    assert.equal(b.successRate.rate, 1);
    assert.ok(b.spendTodayUsd >= 0.0065, `${b.spendTodayUsd}`);
    assert.equal(byName.get('limited')?.maxConcurrent, 2);
    assert.equal(byName.get('limited')?.running, 0);
  });

  it('closes a breaker by hand and wakes the tasks waiting for it; an unknown agent is a 404', async () => {
    const unknown = await call(stack.baseUrl, 'POST', '/v1/agents/no-such-agent/breaker/reset');
    assert.equal(unknown.status, 404, unknown.text);
    assert.match((unknown.json as ErrorBody).message, /no agent "no-such-agent"/);
    // Open for an hour, as a weekly usage limit would leave it.
    const pool = new Pool({ connectionString: db.url, max: 1 });
    try {
      await pool.query(
        `INSERT INTO agent_breakers (agent, state, failures, opened_at, open_until)
         VALUES ('breaker-a', 'open', 2, now(), now() + interval '1 hour')
         ON CONFLICT (agent) DO UPDATE SET state = 'open', failures = 2, opened_at = now(), open_until = now() + interval '1 hour'`,
      );
    } finally {
      await pool.end();
    }
    const { id } = await submit(stack.baseUrl, { prompt: '@print after the reset', agents: ['breaker-a'] });
    await waitingFor(id, 'breaker_open');
    const reset = await call(stack.baseUrl, 'POST', '/v1/agents/breaker-a/breaker/reset');
    assert.equal(reset.status, 200, reset.text);
    const agent = reset.json as AgentView & { woken: number };
    assert.equal(agent.name, 'breaker-a');
    assert.deepEqual([agent.breaker.state, agent.breaker.failures, agent.breaker.openUntil], ['closed', 0, null]);
    assert.equal(agent.woken, 1);
    assert.equal((await waitForEnd(stack.baseUrl, id)).status, 'succeeded');
  });

  it('stops new attempts at the daily budget, shows why, and resumes when the budget is raised', async () => {
    const initial = await call(stack.baseUrl, 'GET', '/v1/budget');
    assert.equal(initial.status, 200);
    const before = initial.json as BudgetView;
    assert.equal(before.dailyUsd, null);
    assert.ok(before.spentTodayUsd > 0, 'the earlier tasks cost something');
    assert.match(before.day, /^\d{4}-\d{2}-\d{2}$/);

    for (const body of [{}, { dailyUsd: -1 }, { dailyUsd: 'lots' }, { dailyUsd: 1, extra: true }, { dailyUsd: 1e-7 }]) {
      const bad = await call(stack.baseUrl, 'PUT', '/v1/budget', { body });
      assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${bad.text}`);
    }
    // budget.daily_usd is numeric(14, 6): the largest cap it holds is taken, one past it is named.
    const tooLarge = await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: 100_000_000 } });
    assert.equal(tooLarge.status, 400, tooLarge.text);
    assert.deepEqual(
      (tooLarge.json as ErrorBody).fields?.map((f) => f.field),
      ['dailyUsd'],
    );
    const largest = await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: 99_999_999.999999 } });
    assert.equal(largest.status, 200, largest.text);
    assert.equal((largest.json as BudgetView).dailyUsd, 99_999_999.999999);

    // The cap is what has been spent already: nothing more may start.
    const capped = await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: before.spentTodayUsd } });
    assert.equal(capped.status, 200, capped.text);
    assert.equal((capped.json as BudgetView).remainingUsd, 0);
    const { id } = await submit(stack.baseUrl, { prompt: '@print after the raise', agent: 'chain-b' });
    const waiting = await waitingFor(id, 'daily_budget');
    assert.match(waiting.waitingReason?.message ?? '', /daily budget/);
    assert.equal(waiting.waitingReason?.until, before.resetsAt, 'until the UTC day turns');
    assert.deepEqual(waiting.attempts, []);

    const raised = await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: 100 } });
    assert.equal(raised.status, 200);
    const done = (await waitForEnd(stack.baseUrl, id)) as ChainTaskView;
    assert.equal(done.status, 'succeeded');
    assert.equal(done.waitingReason, null);
    await call(stack.baseUrl, 'PUT', '/v1/budget', { body: { dailyUsd: null } });
    assert.equal(((await call(stack.baseUrl, 'GET', '/v1/budget')).json as BudgetView).dailyUsd, null);
  });

  it("waits at a task's own budget and resumes when PUT /v1/tasks/:id/budget raises it", async () => {
    const { id } = await submit(stack.baseUrl, { prompt: '@print paid for', agent: 'chain-b', budgetUsd: 0 });
    await waitingFor(id, 'task_budget');
    const missing = await call(stack.baseUrl, 'PUT', '/v1/tasks/00000000-0000-4000-8000-000000000000/budget', {
      body: { budgetUsd: 1 },
    });
    assert.equal(missing.status, 404);
    for (const budgetUsd of [-3, 1e-7]) {
      const bad = await call(stack.baseUrl, 'PUT', `/v1/tasks/${id}/budget`, { body: { budgetUsd } });
      assert.equal(bad.status, 400, `${budgetUsd}: ${bad.text}`);
    }
    const res = await call(stack.baseUrl, 'PUT', `/v1/tasks/${id}/budget`, { body: { budgetUsd: 1 } });
    assert.equal(res.status, 200, res.text);
    // Nothing has reported a cost yet: null, as GET /v1/tasks/:id shows it.
    assert.deepEqual(res.json, { id, budgetUsd: 1, costUsd: null });
    const done = (await waitForEnd(stack.baseUrl, id)) as ChainTaskView;
    assert.equal(done.status, 'succeeded');
    assert.equal(done.budgetUsd, 1);
    // An ended task's budget is left as it was, as a cancel of it is refused.
    const ended = await call(stack.baseUrl, 'PUT', `/v1/tasks/${id}/budget`, { body: { budgetUsd: 2 } });
    assert.equal(ended.status, 409, ended.text);
    assert.match((ended.json as ErrorBody).message, /already succeeded/);
    assert.equal((await task(id)).budgetUsd, 1);
  });
});
