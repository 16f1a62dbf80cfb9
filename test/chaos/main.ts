import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { STOP_SIGNALS } from '../../src/process/stop-signals';
import { writeFormatted } from '../support/write-formatted';
import { serviceSettings, startChaosEnv, type ChaosEnv } from './chaos-env';
import { markdown, type ResultRow } from './report';
import {
  agentWorkerKill,
  badInputCorpus,
  bigRun,
  disruptionWhileRunning,
  metacharacterCorpus,
  type Scale,
  type ScenarioReport,
} from './scenarios';
import { Teardown } from './teardown';

const ROOT = resolve(__dirname, '../../..');
const RESULTS_FILE = resolve(ROOT, 'test/chaos/results.json');

/** Every chaos scenario, in the order they run; each gets a fresh environment. */
export const CHAOS_SCENARIOS: Record<string, (env: ChaosEnv, scale: Scale) => Promise<ScenarioReport>> = {
  'agent-worker-kill': (env) => agentWorkerKill(env),
  'workflow-worker-kill': (env, s) => disruptionWhileRunning(env, 'workflow-worker-kill', s),
  'temporal-restart': (env, s) => disruptionWhileRunning(env, 'temporal-restart', s),
  'api-restart': (env, s) => disruptionWhileRunning(env, 'api-restart', s),
  'postgres-restart': (env, s) => disruptionWhileRunning(env, 'postgres-restart', s),
  big: (env, s) => bigRun(env, s),
  'bad-input-corpus': (env, s) => badInputCorpus(env, s),
  'metacharacter-corpus': (env, s) => metacharacterCorpus(env, s),
};

/** The environment of the scenario under way, undone by a stop signal. */
let current: Teardown | undefined;
let interrupted = false;

/**
 * A stop signal (Ctrl-C, `kill`) stops the scenario's environment (the service, Temporal, the
 * PostgreSQL cluster, their files) in order before the run exits, with no results written. They would
 * die with this process anyway (parent-death signals), and the next run removes files left behind.
 */
function stopOnSignals(): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`chaos: ${signal}: stopping the environment; no results are written\n`);
    void (current?.run() ?? Promise.resolve())
      .catch((err: unknown) => process.stderr.write(`chaos: ${(err as Error).message}\n`))
      .finally(() => process.exit(128 + constants.signals[signal]));
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
}

/**
 * Runs scenario `name` on a fresh environment. A scenario that throws (a wait that timed out on a lost
 * task, an environment that did not start) is a failed one, reported with the error; so is an
 * environment that did not stop cleanly.
 */
async function runScenario(name: string, scale: Scale, slots: number): Promise<ScenarioReport> {
  const teardown = new Teardown();
  current = teardown;
  let report: ScenarioReport;
  try {
    const env = await startChaosEnv(slots, teardown);
    report = await (CHAOS_SCENARIOS[name] as (typeof CHAOS_SCENARIOS)[string])(env, scale);
  } catch (err) {
    report = { name, description: '–', ok: false, problems: [`threw: ${(err as Error).message}`], measurements: {} };
  }
  try {
    await teardown.run();
  } catch (err) {
    report = { ...report, ok: false, problems: [...report.problems, (err as Error).message] };
  }
  return report;
}

/** `npm run chaos [-- --scenario NAME ...] [--quick]`: the long fault tests, with a report in docs/fault-tests.md. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { scenario: { type: 'string', multiple: true }, quick: { type: 'boolean', default: false } },
  });
  const names = values.scenario ?? Object.keys(CHAOS_SCENARIOS);
  const unknown = names.filter((n) => !(n in CHAOS_SCENARIOS));
  if (unknown.length > 0)
    throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(CHAOS_SCENARIOS).join(', ')}`);
  const scale = { quick: values.quick ?? false };
  stopOnSignals();
  const rows: ResultRow[] = [];
  for (const name of names) {
    process.stderr.write(`chaos: ${name}\n`);
    const slots = name === 'big' ? 16 : 4;
    const ranAt = new Date().toISOString();
    const report = await runScenario(name, scale, slots);
    if (interrupted) return; // the signal handler exits once the environment is stopped
    process.stderr.write(`chaos: ${name}: ${report.ok ? 'pass' : `FAIL ${report.problems.join('; ')}`}\n`);
    rows.push({ ...report, ranAt, quick: scale.quick, settings: serviceSettings(slots) });
  }
  // Merge over the stored results by scenario name, so running one scenario updates only its row.
  const stored: ResultRow[] = existsSync(RESULTS_FILE) ? JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) : [];
  const merged = Object.keys(CHAOS_SCENARIOS)
    .map((name) => rows.find((r) => r.name === name) ?? stored.find((r) => r.name === name))
    .filter((r): r is ResultRow => r !== undefined);
  await writeFormatted(RESULTS_FILE, JSON.stringify(merged, null, 2));
  await writeFormatted(resolve(ROOT, 'docs/fault-tests.md'), markdown(merged));
  if (rows.some((r) => !r.ok)) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`chaos failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
