import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { initRepo } from '../support/git';
import { startStack } from '../support/stack';
import { startTestServices } from '../support/test-services';
import { waitFor } from '../support/wait-for';
import { loadTimings, submitToStartMs, summarize, type RunMetrics, type TaskTiming } from './measure';
import { AgentProcessSampler, childProcesses, MachineSampler, UsageSampler } from './process-stats';
import {
  BenchPool,
  postgresTransactions,
  roundTrips,
  settledTemporalStoreOperations,
  waitForServiceDisconnect,
} from './round-trips';
import { readResults, writeReport, type ScenarioResult } from './report';
import { quick, SCENARIOS, WARMUP_BURST, type Scenario } from './scenarios';
import { submitAll } from './submit';

const BENCH_AGENTS_FILE = resolve(__dirname, '../../../test/bench/agents.yaml');
const DEFAULT_HALF_MAX_RATE = 10;

type Queryable = Pick<Pool, 'query'>;

/** Waits until `count` tasks labelled `bench=<label>` have ended. */
async function waitForEnd(pool: Queryable, label: string, count: number, timeoutMs: number): Promise<void> {
  await waitFor(
    `${count} tasks of ${label} to end`,
    async () => {
      const res = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM tasks WHERE labels @> $1 AND status IN ('succeeded', 'failed', 'cancelled')`,
        [{ bench: label }],
      );
      return Number(res.rows[0]?.n) >= count;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Until every workflow on the scenario's workflow queue has closed (they close just after their task's end is written). */
async function waitForClosedWorkflows(temporal: Client, workflowQueue: string): Promise<void> {
  await waitFor(
    `the workflows on ${workflowQueue} to close`,
    async () =>
      (await temporal.workflow.count(`TaskQueue = "${workflowQueue}" AND ExecutionStatus = "Running"`)).count === 0,
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** The round whose makespan is the median (the lower of the middle two for an even count). */
function medianRound(rounds: RunMetrics[]): RunMetrics {
  const sorted = [...rounds].sort((a, b) => a.makespanS - b.makespanS);
  return sorted[Math.floor((sorted.length - 1) / 2)] as RunMetrics;
}

/** BENCH_DEBUG: each task's submission, agent start and end, and terminal write, from the first submission. */
function printTimeline(timings: TaskTiming[]): void {
  const t0 = Math.min(...timings.map((t) => t.createdMs));
  for (const t of [...timings].sort((a, b) => a.createdMs - b.createdMs)) {
    const a = t.attempts[0];
    process.stderr.write(
      `  created +${t.createdMs - t0} start +${(a?.startedMs ?? NaN) - t0} end +${(a?.finishedMs ?? NaN) - t0} done +${(t.finishedMs ?? NaN) - t0}\n`,
    );
  }
}

/**
 * Warms the scenario's fresh stack, unmeasured: one task of its workload run to its end (first
 * connections, the agent's program, a worktree's repository), then a burst of `WARMUP_BURST` no-op tasks.
 * The rounds then measure the service as it runs once it has been up a while.
 */
async function warmUp(
  baseUrl: string,
  pool: Queryable,
  scenario: Scenario,
  halfMaxRate: number,
  repo: string | undefined,
): Promise<void> {
  const first = `warmup-${scenario.name}-${Date.now()}`;
  await submitAll({
    baseUrl,
    scenario: { ...scenario, tasks: 1, arrival: { kind: 'burst' } },
    label: first,
    halfMaxRate,
    repo,
  });
  await waitForEnd(pool, first, 1, 120_000);
  const burst = `${first}-burst`;
  await submitAll({
    baseUrl,
    scenario: { ...scenario, workload: undefined, seconds: 0, tasks: WARMUP_BURST, arrival: { kind: 'burst' } },
    label: burst,
    halfMaxRate,
  });
  await waitForEnd(pool, burst, WARMUP_BURST, 120_000);
}

async function runScenario(
  scenario: Scenario,
  services: { temporalPid: number | undefined; temporalMetricsUrl: string },
  halfMaxRate: number,
): Promise<ScenarioResult> {
  const workflowQueue = `bench-wf-${scenario.name}-${Date.now()}`;
  // A worktree workload's repository and worktrees, removed with the scenario.
  const scratch = scenario.workload === 'worktree' ? mkdtempSync(join(tmpdir(), 'atelier-bench-')) : undefined;
  const repo = scratch && join(scratch, 'repo');
  if (repo) initRepo(repo);
  const stack = await startStack({
    ATELIER_WORKFLOW_QUEUE: workflowQueue,
    ATELIER_AGENTS_FILE: BENCH_AGENTS_FILE,
    ATELIER_AGENT_SLOTS: String(scenario.slots),
    LOG_LEVEL: 'warn',
    ...(scratch && { ATELIER_WORKTREE_ROOT: join(scratch, 'worktrees') }),
  }).catch((err: unknown) => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    throw err;
  });
  const pool = new BenchPool(process.env.DATABASE_URL);
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection });
  try {
    await warmUp(stack.baseUrl, pool, scenario, halfMaxRate, repo);
    const upPid = stack.process.pid as number;
    const supervised = childProcesses(upPid);
    // The agent worker's spawner helper started with the warm-up's agent: its CPU is the worker's too.
    const helpers = supervised
      .filter((p) => p.name === 'agent-worker')
      .flatMap((p) => childProcesses(p.pid).filter((c) => c.name === 'atelier-spawner'));
    const processes = [
      ...(services.temporalPid ? [{ pid: services.temporalPid, name: 'temporal-dev-server' }] : []),
      { pid: upPid, name: 'up-supervisor' },
      ...supervised,
      ...helpers,
      // This process: the load generator (REST submissions, PostgreSQL polls), on the same cores.
      { pid: process.pid, name: 'bench-client' },
    ];
    const storeBefore = await settledTemporalStoreOperations(services.temporalMetricsUrl);
    const postgresBefore = await postgresTransactions(pool);
    const ownQueriesBefore = pool.queries;
    const sampler = new UsageSampler(processes);
    const machineSampler = new MachineSampler();
    // Agents are the spawner helper's children, or the agent worker's without one.
    const agentParents = helpers.length > 0 ? helpers : supervised.filter((p) => p.name === 'agent-worker');
    const agentSampler = new AgentProcessSampler(agentParents.map((p) => p.pid));
    const ideal = Math.ceil(scenario.tasks / scenario.slots) * scenario.seconds;
    const rounds = scenario.rounds ?? 1;
    const measured: RunMetrics[] = [];
    const allTimings: TaskTiming[] = [];
    for (let round = 1; round <= rounds; round++) {
      // The round before has written its tasks' ends; its workflows may still be closing.
      await waitForClosedWorkflows(temporal, workflowQueue);
      const label = `${scenario.name}-${Date.now()}-${round}`;
      await submitAll({ baseUrl: stack.baseUrl, scenario, label, halfMaxRate, repo });
      await waitForEnd(pool, label, scenario.tasks, (ideal * 3 + 300) * 1000);
      const timings = await loadTimings(pool, label);
      if (process.env.BENCH_DEBUG) printTimeline(timings);
      measured.push(summarize(timings, scenario.slots));
      allTimings.push(...timings);
    }
    await waitForClosedWorkflows(temporal, workflowQueue);
    // CPU per round, so scenarios of one round and of several compare.
    const usage = sampler.stop().map((u) => ({ ...u, cpuSeconds: u.cpuSeconds / rounds }));
    const peakAgents = agentSampler.stop();
    const machine = machineSampler.stop(rounds);
    const storeAfter = await settledTemporalStoreOperations(services.temporalMetricsUrl);
    // The service's connections report their PostgreSQL statistics when they close.
    await stack.stop();
    await waitForServiceDisconnect(pool);
    const postgresAfter = await postgresTransactions(pool);
    const trips = roundTrips(
      { before: storeBefore, after: storeAfter },
      { before: postgresBefore, after: postgresAfter, ownQueries: pool.queries - ownQueriesBefore },
      scenario.tasks * rounds,
    );
    const metrics = { ...medianRound(measured), latencyMs: submitToStartMs(allTimings) };
    const parallel = scenario.arrival.kind === 'burst' && scenario.seconds > 0;
    return {
      scenario,
      metrics,
      idealMakespanS: parallel ? ideal : null,
      efficiencyPct: parallel ? (100 * ideal) / metrics.makespanS : null,
      seedFormulaEfficiencyPct: parallel
        ? (100 * scenario.tasks * scenario.seconds) / (scenario.slots * metrics.makespanS)
        : null,
      ...(rounds > 1 && { roundMakespansS: measured.map((m) => m.makespanS) }),
      allRounds: {
        tasks: sum(measured.map((m) => m.tasks)),
        succeeded: sum(measured.map((m) => m.succeeded)),
        executions: sum(measured.map((m) => m.executions)),
        peakConcurrent: peakAgents,
        peakOpenAttempts: Math.max(...measured.map((m) => m.peakOpenAttempts)),
      },
      ...(scenario.arrival.kind === 'halfMax' && { halfMaxRatePerS: halfMaxRate }),
      usage,
      machine,
      roundTrips: trips,
      ranAt: new Date().toISOString(),
    };
  } finally {
    await connection.close();
    await pool.end();
    await stack.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * `npm run bench [-- --scenario NAME ...] [--quick]`: runs each scenario on the real stack (REST API,
 * Temporal dev server, workers, PostgreSQL) and writes test/bench/results.json and docs/benchmarks.md.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      'report-only': { type: 'boolean', default: false },
    },
  });
  if (values['report-only']) {
    await writeReport([], { quick: values.quick ?? false });
    return;
  }
  const names = values.scenario ?? SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  const services = await startTestServices(`atelier_bench_${process.pid}`);
  process.env.TEMPORAL_ADDRESS = services.temporalAddress;
  process.env.DATABASE_URL = services.databaseUrl;
  const previous = readResults();
  const results: ScenarioResult[] = [];
  try {
    for (const base of SCENARIOS.filter((s) => names.includes(s.name))) {
      const scenario = values.quick ? quick(base) : base;
      const noop = [...results, ...previous.scenarios].find((r) => r.scenario.name === 'noop-1000');
      const halfMaxRate = noop ? Math.max(1, noop.metrics.throughputPerS / 2) : DEFAULT_HALF_MAX_RATE;
      process.stderr.write(`bench: ${scenario.name} (${scenario.tasks} tasks)\n`);
      const result = await runScenario(scenario, services, halfMaxRate);
      process.stderr.write(
        `bench: ${scenario.name}: makespan ${result.metrics.makespanS.toFixed(2)} s, ` +
          `${result.metrics.throughputPerS.toFixed(1)} tasks/s, p50 ${result.metrics.latencyMs.p50} ms, ` +
          `executions ${result.allRounds.executions}/${result.allRounds.tasks}\n`,
      );
      results.push(result);
    }
  } finally {
    await services.stop();
  }
  await writeReport(results, { quick: values.quick ?? false });
  // Speed is reported, not judged; exactly-once and the slot limit are the service's promises.
  const broken = results.filter((r) => {
    const c = r.allRounds;
    return c.executions !== c.tasks || c.succeeded !== c.tasks || c.peakConcurrent > r.scenario.slots;
  });
  for (const r of broken) {
    const c = r.allRounds;
    process.stderr.write(
      `bench: ${r.scenario.name}: ${c.succeeded}/${c.tasks} succeeded, ${c.executions} executions, ` +
        `${c.peakConcurrent} agents at once on ${r.scenario.slots} slots\n`,
    );
  }
  if (broken.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
