import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig } from '../../src/config/env';
import { DEV_SERVER_DYNAMIC_CONFIG, DEV_SERVER_SQLITE_PRAGMAS } from '../../src/temporal/dev-server';
import { AGENT_HEARTBEAT_TIMEOUT_SECONDS } from '../../workflows/definitions';
import { ROOT } from '../support/test-env';
import { TEMPORAL_BIN, TEST_SUGGEST_CONTINUE_AS_NEW_EVENTS } from '../support/test-services';
import { WARMUP_BURST } from './scenarios';
import type { WrapperOverhead } from './spawn-log';

/** The machine, versions and settings a scenario ran with (stored with each scenario's result). */
export interface Environment {
  machine: Record<string, unknown>;
  versions: Record<string, unknown>;
  settings: Record<string, unknown> & { quick: boolean };
}

/**
 * The service's settings the benchmark sets to production's defaults (src/config/env.ts), over the
 * test suite's (test/support/stack.ts turns the recovery sweeps nearly off, shortens the retry
 * backoff and the shutdown grace). Its ports and task queues stay its own.
 */
export function productionSettings(): Record<string, string> {
  const defaults = loadConfig({});
  return {
    ATELIER_STRANDED_AFTER_SECONDS: String(defaults.ATELIER_STRANDED_AFTER_SECONDS),
    ATELIER_CLOSED_RUN_SWEEP_SECONDS: String(defaults.ATELIER_CLOSED_RUN_SWEEP_SECONDS),
    ATELIER_RETRY_BACKOFF_SECONDS: String(defaults.ATELIER_RETRY_BACKOFF_SECONDS),
    ATELIER_SHUTDOWN_GRACE_SECONDS: String(defaults.ATELIER_SHUTDOWN_GRACE_SECONDS),
  };
}

/** How this code measures, stored with each result: the report marks the results measured otherwise. */
export const METHOD = {
  services: 'a Temporal dev server (a new SQLite file) and a PostgreSQL database of its own for each scenario',
  timesFrom: "each task's send by the benchmark's client",
  agentStart:
    "the spawn of the task's attempt 1, filed under it in the spawn log by ATELIER_TASK_ID and ATELIER_ATTEMPT",
  executionsFrom: 'the spawn log of test/bench/spawn-log.sh',
};

const version = (pkg: string): string =>
  (JSON.parse(readFileSync(resolve(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

export function benchEnvironment(quick: boolean, wrapper: WrapperOverhead): Environment {
  const cli = execFileSync(TEMPORAL_BIN, ['--version'], { encoding: 'utf8' }).trim();
  return {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
    },
    versions: {
      node: process.version,
      temporalCli: cli,
      temporalSdk: version('@temporalio/worker'),
      nest: version('@nestjs/core'),
    },
    settings: {
      services: METHOD.services,
      devServerSqlitePragmas: DEV_SERVER_SQLITE_PRAGMAS,
      // The test suite's dev server adds its early continue-as-new, which only long-lived workflows reach.
      devServerDynamicConfig: [
        ...DEV_SERVER_DYNAMIC_CONFIG,
        `limit.historyCount.suggestContinueAsNew=${TEST_SUGGEST_CONTINUE_AS_NEW_EVENTS}`,
      ],
      serviceSettings: productionSettings(),
      heartbeatTimeoutSeconds: AGENT_HEARTBEAT_TIMEOUT_SECONDS,
      warmUp: `unmeasured, on each scenario's fresh stack: 1 task of its workload, then ${WARMUP_BURST} no-op tasks at once`,
      agents:
        'test/bench/agents.yaml: `sleep <seconds>` and `true`, real child processes; the worktree workload: the stand-in agent (test/agents/stand-in-agent.mjs); each under test/bench/spawn-log.sh',
      timesFrom: METHOD.timesFrom,
      agentStart: METHOD.agentStart,
      executionsFrom: METHOD.executionsFrom,
      spawnLogWrapper: wrapper,
      quick,
    },
  };
}
