import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { spawnDirectly, type SpawnAgent } from '../../activities/agent/agent-process';
import { AgentSpawner, SPAWNER_PROTOCOL } from '../../activities/agent/agent-spawner';

/** Where `npm run up` and `npm test` build the spawner helper (infra/bootstrap.mjs). */
export const DEFAULT_SPAWNER_BINARY = resolve(__dirname, '../../../.tools/bin/atelier-spawner');

/**
 * The spawner helper `ATELIER_AGENT_SPAWNER` names (unset: the one the project builds, when it is
 * there), or `direct`. A helper that is not an executable file, or that speaks another version of the
 * protocol (built from older sources), stops the worker's start-up.
 */
export function spawnerBinary(setting: string | undefined): string {
  const binary = setting ?? (existsSync(DEFAULT_SPAWNER_BINARY) ? DEFAULT_SPAWNER_BINARY : 'direct');
  if (binary === 'direct') return binary;
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(`ATELIER_AGENT_SPAWNER: ${binary} is not an executable file (npm run build:spawner builds it)`);
  }
  let protocol: string;
  try {
    protocol = execFileSync(binary, ['--protocol'], {
      env: {},
      timeout: 10_000,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  } catch {
    protocol = 'none';
  }
  if (protocol !== String(SPAWNER_PROTOCOL)) {
    throw new Error(
      `ATELIER_AGENT_SPAWNER: ${binary} speaks protocol ${protocol}, this worker ${SPAWNER_PROTOCOL} (npm run build:spawner builds it anew; ATELIER_AGENT_SPAWNER=direct starts agents without it)`,
    );
  }
  return binary;
}

/** How a worker starts agents, and the end of it when the worker stops (the helper exits). */
export interface AgentSpawning {
  spawn: SpawnAgent;
  close: () => void;
}

/** How the agent worker starts agents: through the spawner helper `binary`, or `direct`ly from the worker. */
export function agentSpawn(binary: string, logger: Logger): AgentSpawning {
  if (binary === 'direct') {
    logger.info('agents are spawned directly by the worker');
    return { spawn: spawnDirectly, close: () => undefined };
  }
  logger.info({ spawner: binary }, 'agents are spawned through the spawner helper');
  const spawner = new AgentSpawner(binary, (reason) =>
    logger.error({ spawner: binary, reason }, 'the agent spawner ended: its running agents were killed'),
  );
  return { spawn: spawner.spawn, close: () => spawner.close() };
}
