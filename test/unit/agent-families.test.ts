import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { Pool } from 'pg';
import { createAgentActivities } from '../../activities';
import { loadAgentsFile, parseAgentsFile, type AgentsFile } from '../../src/config/agents-file';
import { AdmissionStore } from '../../src/store/admission-store';
import { AttemptStore } from '../../src/store/attempt-store';
import { AttemptUsageStore } from '../../src/store/attempt-usage-store';
import type { AttemptFailureDetails, RunAgentInput } from '../../workflows/definitions';
import { startOllamaStandIn, STAND_IN_MODEL, type OllamaStandIn } from '../agents/ollama-stand-in';
import { insertTask } from '../support/task-rows';
import { TEST_AGENTS_FILE, testEnv } from '../support/test-env';

interface Stored {
  failure_class: string | null;
  exit_code: number | null;
  error: string | null;
  cost_usd: string | null;
  input_tokens: string | null;
  cached_input_tokens: string | null;
  output_tokens: string | null;
  turns: number | null;
  session_id: string | null;
  result_text: string | null;
  output: string | null;
  reset_at: Date | null;
  started_at: Date;
  finished_at: Date | null;
}

interface Case {
  prompt: string;
  failureClass: string;
  /** Seconds until the reset the agent named; null: it named none. */
  resetIn?: number | null;
  /** The reset the agent named, exactly (epoch ms). */
  resetAt?: number;
  /** What the class's policy does: `retry` (on the same agent), `fallback` (to the next), … */
  action?: string;
  /** The agent's exit code. */
  exitCode?: number;
}

/** The ways a run of each family ends, as the stand-in prints them (see test/agents/stand-in-agent.mjs). */
const FAILURES: Record<string, Case> = {
  rateLimit: { prompt: '@print working\n@fail rate-limit 30', failureClass: 'rate_limited', resetIn: 30 },
  overloaded: { prompt: '@fail overloaded', failureClass: 'overloaded' },
  serverError: { prompt: '@fail server-error', failureClass: 'overloaded' },
  auth: { prompt: '@fail auth', failureClass: 'auth' },
  contextOverflow: { prompt: '@fail context-overflow', failureClass: 'context_overflow' },
  maxTurns: { prompt: '@fail max-turns', failureClass: 'max_turns' },
  exitZeroError: { prompt: '@print trying\n@fail error-exit0', failureClass: 'bad_output' },
  noFinalRecord: { prompt: '@print half way\n@no-final', failureClass: 'crash' },
  nonZeroExit: { prompt: '@stderr segfault in the tool\n@exit 3', failureClass: 'nonzero_exit' },
};

/**
 * A reset on a minute of the clock, `minutes` or a little more ahead: Codex says its reset to the
 * minute, on the local clock, so the stand-in's words name this instant exactly.
 */
const minuteAhead = (minutes: number): number => Math.ceil(Date.now() / 60_000 + minutes) * 60_000;
const codexResetToday = minuteAhead(10);
const codexResetLater = minuteAhead(3 * 24 * 60);

/**
 * Gemini CLI's quota error (TerminalQuotaError) has its HTTP status, 429, as its code, and Gemini CLI
 * exits with it: 173, its low 8 bits. Its class name makes it rate_limited, whatever the code.
 */
const geminiQuota: Case = { ...(FAILURES.rateLimit as Case), exitCode: 429 & 0xff };

/** Each family's profile in test/agents/agents.yaml, and the cases it has (not every CLI has a turn limit). */
const FAMILIES: Record<string, { cases: string[]; extra?: Record<string, Case> }> = {
  'claude-stream': {
    cases: Object.keys(FAILURES),
    extra: {
      // An API 429 after the rate_limit_event every run prints (allowed, its window resetting hours away).
      throttled: { prompt: '@print working\n@fail throttled', failureClass: 'rate_limited', resetIn: null },
      // A spent window while extra usage carries the run on: what ends the run later, without an HTTP
      // status, is no rate limit (and the window's reset, hours away, is not its reset).
      overageCrash: { prompt: '@overage\n@print working\n@no-final', failureClass: 'crash', resetIn: null },
      overageError: {
        prompt: '@overage\n@print working\n@fail error-exit0',
        failureClass: 'bad_output',
        resetIn: null,
      },
    },
  },
  'claude-json': {
    cases: Object.keys(FAILURES).filter((c) => c !== 'rateLimit'),
    extra: {
      rateLimitArray: { prompt: '@array\n@fail rate-limit 30', failureClass: 'rate_limited', resetIn: 30 },
      throttledArray: { prompt: '@array\n@fail throttled', failureClass: 'rate_limited', resetIn: null },
      overageArray: { prompt: '@array\n@overage\n@print working\n@no-final', failureClass: 'crash', resetIn: null },
      array: { prompt: '@array\n@print from the array form', failureClass: 'succeeded' },
    },
  },
  codex: {
    cases: Object.keys(FAILURES).filter((c) => c !== 'maxTurns'),
    extra: {
      usageLimit: { prompt: '@fail usage-limit', failureClass: 'rate_limited', resetIn: (2 * 24 + 3) * 3600 + 5 * 60 },
      // "… try again at 3:05 PM." (its day too when that is not today: "Sep 26th, 2026 3:05 PM").
      usageLimitAt: {
        prompt: `@fail usage-limit-at ${codexResetToday / 1000}`,
        failureClass: 'rate_limited',
        resetAt: codexResetToday,
      },
      usageLimitOn: {
        prompt: `@fail usage-limit-at ${codexResetLater / 1000}`,
        failureClass: 'rate_limited',
        resetAt: codexResetLater,
      },
    },
  },
  'gemini-json': {
    cases: Object.keys(FAILURES).filter((c) => c !== 'noFinalRecord' && c !== 'rateLimit'),
    extra: {
      rateLimit: geminiQuota,
      untrusted: { prompt: '@fail untrusted', failureClass: 'invalid_input' },
      nothing: { prompt: '@no-final', failureClass: 'crash' },
      // A turn that came back empty (INVALID_STREAM, exit 0): a glitch of the model, retried on the same
      // agent although its message mentions the context window. (error-exit0 is a blocked response.)
      invalidStream: { prompt: '@fail invalid-stream', failureClass: 'overloaded', action: 'retry' },
    },
  },
  'gemini-stream': {
    cases: Object.keys(FAILURES).filter((c) => c !== 'rateLimit'),
    extra: {
      rateLimit: geminiQuota,
      invalidStream: { prompt: '@fail invalid-stream', failureClass: 'overloaded', action: 'retry' },
    },
  },
  aider: {
    // The rate limit's reset is the provider's "Please try again in 30s.", not aider's "Retrying in 0.2 seconds...".
    cases: ['rateLimit', 'overloaded', 'auth', 'contextOverflow', 'exitZeroError', 'nonZeroExit'],
    extra: { noUsageLine: { prompt: '@print half way\n@no-final', failureClass: 'bad_output' } },
  },
};

/** A start-to-close timeout that leaves these tests' agents their whole time limit and kill grace. */
const mockEnvironment = (): MockActivityEnvironment =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: 10 * 60_000 }, { logger: new DefaultLogger('ERROR') });

describe('agent families through the stand-in agent', { timeout: 60_000 }, () => {
  let pool: Pool;
  let ollama: OllamaStandIn;
  let runAgent: (input: RunAgentInput) => Promise<unknown>;
  let agents: AgentsFile;

  before(async () => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 10 });
    ollama = await startOllamaStandIn();
    const file = loadAgentsFile(TEST_AGENTS_FILE);
    // Ollama's profiles need the stand-in server's port, known only now.
    const http = parseAgentsFile(
      `
defaultAgent: ollama
agents:
  ollama:
    output: ollama-http
    baseUrl: ${ollama.baseUrl}
    model: ${STAND_IN_MODEL}
    idleSeconds: 1
    pricing: { inputPerMillionUsd: 0, outputPerMillionUsd: 0 }
  ollama-missing-model:
    output: ollama-http
    baseUrl: ${ollama.baseUrl}
    model: qwen9
  ollama-down:
    output: ollama-http
    baseUrl: http://127.0.0.1:9
    model: ${STAND_IN_MODEL}
`,
      'ollama profiles',
    );
    agents = { ...file, agents: { ...file.agents, ...http.agents } };
    ({ runAgent } = createAgentActivities({
      agents,
      store: new AttemptStore(pool),
      admission: new AdmissionStore(pool),
      usage: new AttemptUsageStore(pool),
      workerIdentity: 'agent-families-test',
      env: process.env,
      heartbeatIntervalMs: 50,
    }));
  });
  after(async () => {
    await ollama?.close();
    await pool?.end();
  });

  /** Runs one attempt of `agent` on `prompt`; returns the stored attempt and what the activity threw. */
  async function attempt(agent: string, prompt: string, timeoutSeconds = 20) {
    const taskId = await insertTask(pool, { prompt, agent });
    const outcome = await mockEnvironment()
      .run(runAgent, { taskId, attempt: 1, agent, timeoutSeconds })
      .then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: undefined, error }),
      );
    const res = await pool.query<Stored>('SELECT * FROM attempts WHERE task_id = $1', [taskId]);
    const stored = res.rows[0];
    assert.ok(stored, `${agent}: no attempt was stored`);
    return { stored, ...outcome };
  }

  function assertClass(label: string, got: Awaited<ReturnType<typeof attempt>>, c: Case): void {
    assert.equal(got.stored.failure_class, c.failureClass, `${label}: ${got.stored.error ?? ''}`);
    if (c.exitCode !== undefined) assert.equal(got.stored.exit_code, c.exitCode, `${label}: its exit code`);
    if (c.failureClass === 'succeeded') return;
    assert.ok(got.error instanceof ApplicationFailure, `${label}: the activity fails`);
    assert.equal(got.error.type, c.failureClass, label);
    const details = got.error.details?.[0] as AttemptFailureDetails | undefined;
    assert.ok(details?.policy, `${label}: the failure carries its policy`);
    if (c.action !== undefined) assert.equal(details.policy.action, c.action, `${label}: its policy`);
    if (c.resetIn === null) {
      assert.equal(got.stored.reset_at, null, `${label}: no reset time is stored`);
      assert.equal(details.resetAt ?? undefined, undefined, `${label}: the workflow gets no reset time`);
    } else if (c.resetIn !== undefined) {
      assert.ok(got.stored.reset_at instanceof Date, `${label}: the reset time is stored`);
      const seconds = (got.stored.reset_at.getTime() - Date.now()) / 1000;
      assert.ok(seconds > c.resetIn - 5 && seconds <= c.resetIn + 1, `${label}: resets in ${seconds}s`);
      assert.equal(details.resetAt, got.stored.reset_at.getTime(), `${label}: the workflow gets the reset time`);
    }
    if (c.resetAt !== undefined) {
      assert.equal(got.stored.reset_at?.toISOString(), new Date(c.resetAt).toISOString(), `${label}: its reset`);
      assert.equal(details.resetAt, c.resetAt, `${label}: the workflow gets the reset time`);
    }
  }

  it('takes the reset time from the words of a command that died rate limited, saying only that', async () => {
    const got = await attempt('stand-in', '@stderr Error: 429 Too Many Requests, try again in 90s\n@exit 1');
    assertClass('stand-in', got, { prompt: '', failureClass: 'rate_limited', resetIn: 90 });
  });

  for (const [agent, family] of Object.entries(FAMILIES)) {
    it(`${agent}: recognises each way a run ends`, async () => {
      const cases = [
        ...family.cases.map((name) => [name, FAILURES[name] as Case] as const),
        ...Object.entries(family.extra ?? {}),
      ];
      const results = await Promise.all(cases.map(([, c]) => attempt(agent, c.prompt)));
      cases.forEach(([name, c], i) =>
        assertClass(`${agent} ${name}`, results[i] as Awaited<ReturnType<typeof attempt>>, c),
      );
    });

    it(`${agent}: records the answer, cost, tokens, turns and session of a success`, async () => {
      const { stored, result } = await attempt(
        agent,
        '@session sess-42\n@usage 2000 500\n@cost 0.25\n@turns 3\n@print the answer',
      );
      assert.equal(stored.failure_class, 'succeeded', stored.error ?? '');
      const expected: Record<string, Partial<Stored>> = {
        'claude-stream': {
          session_id: 'sess-42',
          result_text: 'the answer',
          cost_usd: '0.250000',
          input_tokens: '2000',
          turns: 3,
        },
        'claude-json': {
          session_id: 'sess-42',
          result_text: 'the answer',
          cost_usd: '0.250000',
          input_tokens: '2000',
          turns: 3,
        },
        // Codex and Gemini report no cost: it comes from the profile's prices (1.25 and 10 USD per million).
        codex: {
          session_id: 'sess-42',
          result_text: 'the answer',
          cost_usd: '0.007500',
          input_tokens: '2000',
          turns: 1,
        },
        'gemini-json': {
          session_id: 'sess-42',
          result_text: 'the answer',
          cost_usd: '0.007500',
          input_tokens: '2000',
          turns: 3,
        },
        'gemini-stream': {
          session_id: 'sess-42',
          result_text: 'the answer',
          cost_usd: null,
          input_tokens: '2000',
          turns: 1,
        },
        aider: { session_id: null, result_text: null, cost_usd: '0.250000', input_tokens: '2000', turns: 1 },
      };
      for (const [field, value] of Object.entries(expected[agent] ?? {})) {
        assert.deepEqual(stored[field as keyof Stored], value, `${agent} ${field}`);
      }
      assert.equal(stored.output_tokens, '500', `${agent} output tokens`);
      assert.equal((result as { agent?: string }).agent, agent);
    });
  }

  it('aider: reads its usage line as Rich prints it: the cost on a line of its own, or wrapped at 80 columns', async () => {
    const [ownLine, wrapped] = await Promise.all([
      // A call that both wrote and read the prompt cache: aider puts its cost on a line of its own.
      attempt('aider', '@usage 50000 1200 45000 2000\n@cost 0.25\n@print the answer'),
      // No COLUMNS (no terminal): 80 columns, and the usage line's end goes to the next line.
      attempt('aider-80', '@usage 15000 1200 12000\n@cost 1.23\n@print the answer'),
    ]);
    assert.match(
      ownLine.stored.output ?? '',
      /2\.0k cache write, 45k cache hit, 1\.2k received\.\nCost: \$0\.25 message/,
    );
    assert.match(
      wrapped.stored.output ?? '',
      /12k cache hit, 1\.2k received\. Cost: \$1\.23 message, \$1\.23\nsession\.\n/,
    );
    const expected: [Stored, Partial<Stored>][] = [
      // "sent" is the whole input; the cache's writes and hits are parts of it.
      [ownLine.stored, { cost_usd: '0.250000', input_tokens: '50000', cached_input_tokens: '45000' }],
      [wrapped.stored, { cost_usd: '1.230000', input_tokens: '15000', cached_input_tokens: '12000' }],
    ];
    for (const [stored, fields] of expected) {
      assert.equal(stored.failure_class, 'succeeded', stored.error ?? '');
      assert.equal(stored.output_tokens, '1200');
      for (const [field, value] of Object.entries(fields)) {
        assert.equal(stored[field as keyof Stored], value, `${field} of ${stored.output ?? ''}`);
      }
    }
  });

  it('kills a silent run at its idle limit, long before its wall-clock limit', async () => {
    const started = Date.now();
    const { stored } = await attempt('stalling', '@print thinking\n@hang', 30);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(stored.failure_class, 'stalled', stored.error ?? '');
    assert.match(stored.error ?? '', /printed nothing for 1s/);
    assert.ok(seconds < 5, `stalled after ${seconds}s; the idle limit is 1 s, the timeout 30 s`);
  });

  it('lets a run that keeps printing go on past its idle limit', async () => {
    const ticks = Array.from({ length: 4 }, (_, i) => `@print tick ${i}\n@sleep 0.4`).join('\n');
    const { stored } = await attempt('stalling', ticks, 30);
    assert.equal(stored.failure_class, 'succeeded', stored.error ?? '');
  });

  it('is killed by its wall-clock limit when that comes first', async () => {
    const ticks = Array.from({ length: 20 }, () => '@print tick\n@sleep 0.3').join('\n');
    const { stored } = await attempt('stalling', ticks, 1);
    assert.equal(stored.failure_class, 'timeout');
  });

  it('gemini-json: finds the report at the end of an output longer than the parser keeps', async () => {
    const { stored } = await attempt('gemini-json', '@bytes 17000000\n@print the answer');
    assert.equal(stored.failure_class, 'succeeded', stored.error ?? '');
    assert.equal(stored.result_text, 'the answer');
    assert.equal(stored.input_tokens, '1200');
  });

  it("classifies by a profile's own error patterns", async () => {
    const { stored } = await attempt('patterned', '@print Sorry: license expired for this seat');
    assert.equal(stored.failure_class, 'auth');
  });

  describe('ollama-http against a stand-in server', () => {
    it('streams an answer and records its tokens', async () => {
      const { stored, result } = await attempt('ollama', '@print Hello\n@print World');
      assert.equal(stored.failure_class, 'succeeded', stored.error ?? '');
      assert.equal(stored.result_text, 'Hello\nWorld\n');
      assert.equal(stored.output_tokens, '2');
      assert.equal(stored.input_tokens, '4');
      assert.equal(stored.cost_usd, '0.000000');
      assert.equal((result as { outputTail: string }).outputTail, 'Hello\nWorld\n');
    });

    it('recognises error bodies, broken streams, silence and an unreachable server', async () => {
      const cases: [string, string, string][] = [
        ['ollama', '@http-error 429 too many requests', 'rate_limited'],
        ['ollama', '@http-error 503 server busy, please try again.  maximum pending requests exceeded', 'overloaded'],
        ['ollama', '@http-error 401 unauthorized', 'auth'],
        ['ollama', '@http-error 400 the input length exceeds the context length', 'context_overflow'],
        ['ollama-missing-model', 'hello', 'bad_output'],
        [
          'ollama',
          '@print Hel\n@stream-error an error was encountered while running the model: unexpected EOF',
          'crash',
        ],
        ['ollama', '@print Hel\n@no-done', 'crash'],
        ['ollama', '@print Hel\n@hang', 'stalled'],
        ['ollama', '@print Hel\n@drop', 'crash'],
        ['ollama-down', 'hello', 'crash'],
      ];
      const results = await Promise.all(cases.map(([agent, prompt]) => attempt(agent, prompt)));
      cases.forEach(([agent, prompt, failureClass], i) => {
        const stored = results[i]?.stored;
        assert.equal(stored?.failure_class, failureClass, `${agent} ${prompt}: ${stored?.error ?? ''}`);
      });
      assert.match(results[4]?.stored.error ?? '', /HTTP 404: model "qwen9" not found/);
    });
  });
});
