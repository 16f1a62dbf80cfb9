import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { withinDeadline } from '../../src/async/within-deadline';
import { parentDeathPrefix } from '../../src/process/parent-death-signal';
import { initRepo } from '../support/git';
import { startStack, type Stack } from '../support/stack';
import { ROOT } from '../support/test-env';
import { startTestServices, type TestServices } from '../support/test-services';
import { waitFor } from '../support/wait-for';
import { stopAllOnSignals, stopLater } from './cleanup';
import { benchEnvironment, productionSettings, type Environment } from './environment';
import {
  executionsByTask,
  loadTimings,
  peakAgents,
  recordToSpawnMs,
  submitToStartMs,
  summarize,
  type RunMetrics,
  type TaskTiming,
} from './measure';
import { PostgresBackendSampler } from './postgres-backends';
import { childProcesses, MachineSampler, UsageSampler } from './process-stats';
import { writeReport } from './report';
import type { ScenarioResult } from './results';
import {
  BenchPool,
  postgresTransactions,
  roundTrips,
  settledTemporalStoreOperations,
  waitForServiceDisconnect,
} from './round-trips';
import { quick, SCENARIOS, WARMUP_BURST, type Scenario } from './scenarios';
import { measureWrapperOverhead, readSpawnLog, SPAWN_LOG_VARIABLE, spawnsBetween, type Spawn } from './spawn-log';
import { submitAll } from './submit';

const BENCH_AGENTS_FILE = resolve(ROOT, 'test/bench/agents.yaml');
/** The most `up` may take to stop (its drain is bounded by production's 30 s shutdown grace) before it is killed. */
const STACK_STOP_DEADLINE_MS = 60_000;
/** The most the dev server and the database may take to go. */
const SERVICES_STOP_DEADLINE_MS = 30_000;

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

/** BENCH_DEBUG: each task's send, attempt record's start and end, and terminal write, from the first send; then the spawns. */
function printTimeline(timings: TaskTiming[], spawns: Spawn[]): void {
  const t0 = Math.min(...timings.map((t) => t.submittedMs));
  for (const t of [...timings].sort((a, b) => a.submittedMs - b.submittedMs)) {
    const a = t.attempts[0];
    process.stderr.write(
      `  sent +${t.submittedMs - t0} attempt +${(a?.startedMs ?? NaN) - t0}…+${(a?.finishedMs ?? NaN) - t0} done +${(t.finishedMs ?? NaN) - t0}\n`,
    );
  }
  for (const s of spawns) {
    process.stderr.write(
      `  spawn ${s.pid} ${s.taskId ?? '-'} #${s.attempt ?? '-'} +${(s.startMs - t0).toFixed(1)}…+${((s.exitMs ?? NaN) - t0).toFixed(1)}\n`,
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
  halfMaxRate: number | undefined,
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

/** `up` stopped (SIGTERM, as `npm run up` is), or killed once the deadline passes: its services then get SIGTERM by their parent-death signal. */
async function stopStack(stack: Stack): Promise<void> {
  await withinDeadline(stack.stop(), STACK_STOP_DEADLINE_MS, 'the stack').catch(async (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}: killing it\n`);
    stack.process.kill('SIGKILL');
    await stack.exited;
  });
}

/** The dev server stopped and its files and the database removed, or the dev server killed once the deadline passes. */
async function stopServices(services: TestServices): Promise<void> {
  await withinDeadline(services.stop(), SERVICES_STOP_DEADLINE_MS, 'the dev server and the database').catch(
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error).message}: killing the dev server\n`);
      if (services.temporalPid !== undefined) process.kill(services.temporalPid, 'SIGKILL');
    },
  );
}

/**
 * Runs one scenario on a stack of its own: a fresh Temporal dev server and database, `up` with the
 * scenario's slots, and a scratch directory for its spawn log (and a worktree workload's repository).
 * Whatever happens, and on a stop signal, all of it is stopped and removed.
 */
async function runScenario(
  scenario: Scenario,
  halfMaxRate: number | undefined,
  environment: Environment,
): Promise<ScenarioResult> {
  const stops: (() => Promise<void>)[] = [];
  try {
    const scratch = mkdtempSync(join(tmpdir(), `atelier-bench-${scenario.name}-`));
    stops.push(stopLater(scratch, async () => rmSync(scratch, { recursive: true, force: true })));
    const services = await startTestServices(`atelier_bench_${process.pid}`);
    stops.push(stopLater('the dev server and the database', () => stopServices(services)));
    const repo = scenario.workload === 'worktree' ? join(scratch, 'repo') : undefined;
    if (repo) initRepo(repo);
    const spawnLog = join(scratch, 'spawns.log');
    const workflowQueue = `bench-wf-${scenario.name}-${Date.now()}`;
    const stack = await startStack(
      {
        TEMPORAL_ADDRESS: services.temporalAddress,
        DATABASE_URL: services.databaseUrl,
        ATELIER_WORKFLOW_QUEUE: workflowQueue,
        ATELIER_AGENTS_FILE: BENCH_AGENTS_FILE,
        ATELIER_AGENT_SLOTS: String(scenario.slots),
        LOG_LEVEL: 'warn',
        ...productionSettings(),
        [SPAWN_LOG_VARIABLE]: spawnLog,
        ...(repo && { ATELIER_WORKTREE_ROOT: join(scratch, 'worktrees') }),
      },
      // Stopped by the kernel if the benchmark is killed outright.
      { argv: [...parentDeathPrefix('TERM'), process.execPath, resolve(ROOT, 'dist/src/up/main.js')] },
    );
    const stopUp = stopLater('the stack', () => stopStack(stack));
    stops.push(stopUp);
    const pool = new BenchPool(services.databaseUrl);
    stops.push(() => pool.end());
    const connection = await Connection.connect({ address: services.temporalAddress });
    stops.push(() => connection.close());
    return await measure({
      scenario,
      halfMaxRate,
      environment,
      services,
      stack,
      stopUp,
      pool,
      connection,
      workflowQueue,
      spawnLog,
      repo,
    });
  } finally {
    for (const stop of stops.reverse()) {
      await stop().catch((err: unknown) => {
        process.stderr.write(`bench: cleanup: ${(err as Error).message}\n`);
        process.exitCode = 1;
      });
    }
  }
}

interface Run {
  scenario: Scenario;
  halfMaxRate: number | undefined;
  environment: Environment;
  services: TestServices;
  stack: Stack;
  /** Stops the stack (once: runScenario's cleanup then finds it stopped). */
  stopUp: () => Promise<void>;
  pool: BenchPool;
  connection: Connection;
  workflowQueue: string;
  spawnLog: string;
  repo: string | undefined;
}

async function measure(run: Run): Promise<ScenarioResult> {
  const { scenario, halfMaxRate, services, stack, pool, spawnLog, repo } = run;
  const temporal = new Client({ connection: run.connection });
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
  const backendSampler = new PostgresBackendSampler(pool);
  const machineSampler = new MachineSampler();
  const ideal = Math.ceil(scenario.tasks / scenario.slots) * scenario.seconds;
  const rounds = scenario.rounds ?? 1;
  const measured: RunMetrics[] = [];
  const allTimings: TaskTiming[] = [];
  let firstSendMs: number | undefined;
  for (let round = 1; round <= rounds; round++) {
    // The round before has written its tasks' ends; its workflows may still be closing.
    await waitForClosedWorkflows(temporal, run.workflowQueue);
    const label = `${scenario.name}-${Date.now()}-${round}`;
    const roundStartMs = Date.now();
    firstSendMs ??= roundStartMs;
    const sentMs = await submitAll({ baseUrl: stack.baseUrl, scenario, label, halfMaxRate, repo });
    await waitForEnd(pool, label, scenario.tasks, (ideal * 3 + 300) * 1000);
    const timings = await loadTimings(pool, label, sentMs);
    // The round's agents have exited and logged it: their tasks' ends are written after their exits.
    const spawns = spawnsBetween(readSpawnLog(spawnLog), roundStartMs);
    if (process.env.BENCH_DEBUG) printTimeline(timings, spawns);
    measured.push(summarize(timings, spawns, scenario.slots));
    allTimings.push(...timings);
  }
  await waitForClosedWorkflows(temporal, run.workflowQueue);
  // CPU per round, so scenarios of one round and of several compare.
  const perRound = <T extends { cpuSeconds: number }>(u: T): T => ({ ...u, cpuSeconds: u.cpuSeconds / rounds });
  const backends = await backendSampler.stop();
  const usage = [...sampler.stop(), ...(backends ? [backends] : [])].map(perRound);
  const machine = machineSampler.stop(rounds);
  const storeAfter = await settledTemporalStoreOperations(services.temporalMetricsUrl);
  // The service's connections report their PostgreSQL statistics when they close.
  await run.stopUp();
  await waitForServiceDisconnect(pool);
  const postgresAfter = await postgresTransactions(pool);
  const trips = roundTrips(
    { before: storeBefore, after: storeAfter },
    { before: postgresBefore, after: postgresAfter, ownQueries: pool.queries - ownQueriesBefore },
    scenario.tasks * rounds,
  );
  // Every execution since the first round's first send, up to the stack's stop: one started late counts too.
  const spawns = spawnsBetween(readSpawnLog(spawnLog), firstSendMs as number);
  const metrics = {
    ...medianRound(measured),
    latencyMs: submitToStartMs(allTimings, spawns),
    recordToSpawnMs: recordToSpawnMs(allTimings, spawns),
  };
  const parallel = scenario.arrival.kind === 'burst' && scenario.seconds > 0;
  return {
    scenario,
    environment: run.environment,
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
      executions: spawns.length,
      executionsByTask: executionsByTask(allTimings, spawns),
      executionsWithoutExit: spawns.filter((s) => s.exitMs === null).length,
      attemptRows: sum(measured.map((m) => m.attemptRows)),
      peakAgents: peakAgents(spawns),
      peakOpenAttempts: Math.max(...measured.map((m) => m.peakOpenAttempts)),
    },
    ...(scenario.arrival.kind === 'halfMax' && { halfMaxRatePerS: halfMaxRate }),
    usage,
    machine,
    roundTrips: trips,
    ranAt: new Date().toISOString(),
  };
}

/**
 * `npm run bench [-- --scenario NAME ...] [--quick]`: runs each scenario on the real stack (REST API,
 * Temporal dev server, workers, PostgreSQL) and writes test/bench/results.json and docs/benchmarks.md
 * (a --quick run: test/artifacts/bench-quick/, so that it never replaces a full run's figures).
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      'report-only': { type: 'boolean', default: false },
    },
  });
  const isQuick = values.quick ?? false;
  if (values['report-only']) {
    await writeReport([], { quick: isQuick });
    return;
  }
  const names = values.scenario ?? SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  // Half the no-op throughput is measured in the same run, on the same host, never taken from a stored result.
  if (names.includes('latency-half-max') && !names.includes('noop-1000')) {
    process.stderr.write('bench: latency-half-max runs at half the no-op throughput: running noop-1000 first\n');
    names.push('noop-1000');
  }
  stopAllOnSignals();
  const environment = benchEnvironment(isQuick, measureWrapperOverhead());
  const results: ScenarioResult[] = [];
  for (const base of SCENARIOS.filter((s) => names.includes(s.name))) {
    const scenario = isQuick ? quick(base) : base;
    const noop = results.find((r) => r.scenario.name === 'noop-1000');
    const halfMaxRate = noop && Math.max(1, noop.metrics.throughputPerS / 2);
    process.stderr.write(`bench: ${scenario.name} (${scenario.tasks} tasks)\n`);
    const result = await runScenario(scenario, halfMaxRate, environment);
    process.stderr.write(
      `bench: ${scenario.name}: makespan ${result.metrics.makespanS.toFixed(2)} s, ` +
        `${result.metrics.throughputPerS.toFixed(1)} tasks/s, p50 ${result.metrics.latencyMs.p50.toFixed(1)} ms, ` +
        `executions ${result.allRounds.executions}/${result.allRounds.tasks}, ` +
        `${result.allRounds.peakAgents} agents at once on ${scenario.slots} slots\n`,
    );
    results.push(result);
  }
  await writeReport(results, { quick: isQuick });
  // Speed is reported, not judged; exactly-once (per attempt) and the slot limit are the service's promises.
  const broken = results.filter((r) => {
    const c = r.allRounds;
    const e = c.executionsByTask;
    return (
      e === undefined ||
      e.wrong.length > 0 ||
      e.unfiled > 0 ||
      c.succeeded !== c.tasks ||
      (c.executionsWithoutExit ?? 0) > 0 ||
      (c.peakAgents ?? 0) > r.scenario.slots
    );
  });
  for (const r of broken) {
    const c = r.allRounds;
    const e = c.executionsByTask;
    process.stderr.write(
      `bench: ${r.scenario.name}: ${c.succeeded}/${c.tasks} succeeded, ${c.executions} executions ` +
        `(${c.executionsWithoutExit} with no exit logged, ${e?.unfiled} filed under no task of the run), ` +
        `${c.peakAgents} agents at once on ${r.scenario.slots} slots; tasks run otherwise than once per attempt: ` +
        `${e?.wrong.length}${e?.wrong.length ? ` (${e.wrong.slice(0, 5).join('; ')})` : ''}\n`,
    );
  }
  if (broken.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
