import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Pool } from 'pg';
import { loadConfig } from '../../src/config/env';
import { ensureDatabase, migrate } from '../../src/db/migrate';
import { retryTransient } from '../../src/db/transient';
import { parentDeathPrefix } from '../../src/process/parent-death-signal';
import { startDevServer, stopDevServer } from '../../src/temporal/dev-server';
import { freePort } from '../../src/net/free-port';
import { servingWithWorkers } from '../../src/up/serving-with-workers';
import { startStack, type Stack } from '../support/stack';
import { ROOT, uniqueQueue } from '../support/test-env';
import { TEMPORAL_BIN } from '../support/test-services';
import { waitFor } from '../support/wait-for';
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres';
import { makeRunDir } from './run-dir';
import { Teardown } from './teardown';

export const CHAOS_AGENTS_FILE = resolve(ROOT, 'test/chaos/agents.yaml');

export interface ChaosEnv {
  /** The environment's own directory (its PostgreSQL cluster, Temporal's file), removed by `stop`. */
  dir: string;
  stack: Stack;
  pg: PrivatePostgres;
  pool: Pool;
  temporal: Client;
  temporalAddress: string;
  databaseUrl: string;
  workflowQueue: string;
  agentQueue: string;
  /** The file every run of the stand-in agent appends a line to (test/agents/stand-in-agent.mjs). */
  spawnLog: string;
  /** Kills the Temporal dev server (SIGKILL) and starts it again on the same port and file. */
  restartTemporal: (downMs: number) => Promise<void>;
  /** Stops and removes everything the environment started and made (`Teardown.run`). */
  stop: () => Promise<void>;
}

/**
 * The settings chaos runs give the service. The sweeps are production's (src/config/env.ts): the
 * start of tasks stranded by a killed API and the recording of runs closed in Temporal run under the
 * faults too, racing the workflows' own writes, where the test suite's stacks turn them off.
 */
export function serviceSettings(slots: number): Record<string, string> {
  const production = loadConfig({});
  return {
    ATELIER_AGENT_SLOTS: String(slots),
    ATELIER_RETRY_BACKOFF_SECONDS: '0.5',
    ATELIER_STRANDED_AFTER_SECONDS: String(production.ATELIER_STRANDED_AFTER_SECONDS),
    ATELIER_CLOSED_RUN_SWEEP_SECONDS: String(production.ATELIER_CLOSED_RUN_SWEEP_SECONDS),
  };
}

/**
 * Everything a chaos scenario may break, all its own: a private PostgreSQL cluster, a Temporal dev
 * server with a persistent file, and the service started as `npm run up` starts it, each under a
 * parent-death signal (it stops should this process die, even by SIGKILL), their files in one directory
 * (which the next environment removes if this process dies first). Each part is added to `teardown` as soon as
 * it exists, so a stop signal in the middle of the start undoes what has started; a failed start
 * undoes it all before it throws.
 */
export async function startChaosEnv(slots: number, teardown = new Teardown()): Promise<ChaosEnv> {
  try {
    return await startParts(slots, teardown);
  } catch (err) {
    await teardown.run().catch((stopErr: unknown) => {
      throw new Error(`${(err as Error).message}; and then ${(stopErr as Error).message}`);
    });
    throw err;
  }
}

async function startParts(slots: number, teardown: Teardown): Promise<ChaosEnv> {
  const dir = makeRunDir();
  teardown.add("remove the environment's files", () => rmSync(dir, { recursive: true, force: true }));
  const pg = await startPrivatePostgres(dir);
  teardown.add('stop the PostgreSQL cluster', () => pg.stop());
  const databaseUrl = pg.url('atelier');
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);

  const port = await freePort();
  const temporalAddress = `127.0.0.1:${port}`;
  const startTemporal = () =>
    startDevServer(
      {
        binary: TEMPORAL_BIN,
        dbFile: join(dir, 'temporal', 'temporal.sqlite'),
        ip: '127.0.0.1',
        port,
        uiPort: 0,
        namespace: 'default',
        ui: false,
        logLevel: 'error',
      },
      'ignore',
    );
  let server = await startTemporal();
  // The server running now: after a restart that failed, the one killed, which stopDevServer finds exited.
  teardown.add('stop Temporal', () => stopDevServer(server));

  const spawnLog = join(dir, 'spawns.jsonl');
  const workflowQueue = uniqueQueue('chaos-wf');
  const agentQueue = uniqueQueue('chaos-agents');
  const stack = await startStack(
    {
      TEMPORAL_ADDRESS: temporalAddress,
      DATABASE_URL: databaseUrl,
      ATELIER_AGENTS_FILE: CHAOS_AGENTS_FILE,
      ATELIER_WORKFLOW_QUEUE: workflowQueue,
      ATELIER_AGENT_QUEUE: agentQueue,
      // The agents' profiles pass it through (test/chaos/agents.yaml).
      STAND_IN_SPAWN_LOG: spawnLog,
      LOG_LEVEL: 'error',
      ...serviceSettings(slots),
    },
    { argv: [...parentDeathPrefix('TERM'), process.execPath, resolve(ROOT, 'dist/src/up/main.js')] },
  );
  teardown.add('stop the service', () => stack.stop());
  const pool = new Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => undefined); // a restarted server drops idle clients; the next query reconnects
  teardown.add('close the database pool', () => pool.end());
  const temporal = new Client({ connection: Connection.lazy({ address: temporalAddress }) });
  teardown.add('close the Temporal connection', () => temporal.connection.close());

  return {
    dir,
    stack,
    pg,
    pool,
    temporal,
    temporalAddress,
    databaseUrl,
    workflowQueue,
    agentQueue,
    spawnLog,
    restartTemporal: async (downMs) => {
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGKILL');
        await exited;
      }
      await new Promise((r) => setTimeout(r, downMs));
      server = await startTemporal();
    },
    stop: () => teardown.run(),
  };
}

/** A query that waits out a restarting database, as the service's own writes do. */
export const query = <R extends Record<string, unknown>>(env: ChaosEnv, text: string, values?: unknown[]) =>
  retryTransient(() => env.pool.query<R>(text, values), 60_000);

const serving = (env: ChaosEnv): Promise<boolean> => servingWithWorkers(env.stack.baseUrl).catch(() => false);

/** What /health/ready said around a disruption, asked every 100 ms. */
export interface ReadinessWatch {
  /**
   * Stops asking, and tells from `disruptedAt` (ms since the epoch): when the first question sent since
   * then that was answered "not ready" was asked (the outage had begun by then), and when the answer
   * came to the first question asked after the last "not ready" (the service was ready by then, and
   * stayed so); the latter undefined when the last answer was "not ready" too. Both undefined when no
   * answer since the disruption was "not ready". `notReadyBefore`: answers "not ready" that came
   * before the disruption (one to a question asked just before it may already see its effect).
   */
  stop: (
    disruptedAt: number,
  ) => Promise<{ notReadyAfterMs?: number; readyAgainAfterMs?: number; notReadyBefore: number }>;
}

/**
 * Starts watching /health/ready (ready, with workers polling both task queues) now. A question is sent
 * every 100 ms whether the one before has been answered or not (an answer may wait for the API's
 * own check deadline, longer than a short outage), each timed when it was sent and when answered.
 */
export function watchReadiness(env: ChaosEnv): ReadinessWatch {
  const answers: Promise<{ sentAt: number; answeredAt: number; ready: boolean }>[] = [];
  const ask = (): void => {
    const sentAt = Date.now();
    answers.push(serving(env).then((ready) => ({ sentAt, answeredAt: Date.now(), ready })));
  };
  ask();
  const timer = setInterval(ask, 100);
  return {
    stop: async (disruptedAt) => {
      clearInterval(timer);
      const all = (await Promise.all(answers)).sort((a, b) => a.sentAt - b.sentAt);
      const since = all.filter((a) => a.sentAt >= disruptedAt);
      const notReady = since.filter((a) => !a.ready);
      const firstNotReady = notReady[0];
      const lastNotReady = notReady[notReady.length - 1];
      const readyAgain = lastNotReady && since.find((a) => a.sentAt > lastNotReady.sentAt);
      return {
        notReadyAfterMs: firstNotReady && firstNotReady.sentAt - disruptedAt,
        readyAgainAfterMs: readyAgain && readyAgain.answeredAt - disruptedAt,
        notReadyBefore: all.filter((a) => a.answeredAt < disruptedAt && !a.ready).length,
      };
    },
  };
}

const { TaskQueueType } = proto.api.enums.v1;

/**
 * Whether Temporal saw a worker poll `taskQueue` after `since` (a poll begun before does not count),
 * other than the killed process `gonePid`, which may have polled in the moment before its kill.
 */
async function polledSince(
  env: ChaosEnv,
  taskQueue: string,
  type: proto.api.enums.v1.TaskQueueType,
  since: number,
  gonePid: number | undefined,
): Promise<boolean> {
  const res = await env.temporal.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueue },
    taskQueueType: type,
  });
  return (res.pollers ?? []).some((p) => {
    const at = Number(p.lastAccessTime?.seconds ?? 0) * 1000 + Math.floor((p.lastAccessTime?.nanos ?? 0) / 1e6);
    // Worker identities read `<name>:<pid>-<random>@<host>` (src/workers/worker-identity.ts).
    return at > since && !(gonePid !== undefined && p.identity?.includes(`:${gonePid}-`));
  });
}

/**
 * How long from `since` until workers poll again by themselves, as Temporal itself sees them: the
 * workflow queue only, by another process than the killed workflow worker `gonePid`; or both (after
 * Temporal restarted, which forgets every poller). Returns once /health/ready also reports the service
 * ready with them.
 */
export async function timeToReconnect(
  env: ChaosEnv,
  since: number,
  reconnect: { queues: 'workflow'; gonePid: number } | { queues: 'both' },
  timeoutMs = 120_000,
): Promise<number> {
  const { queues } = reconnect;
  const gonePid = reconnect.queues === 'workflow' ? reconnect.gonePid : undefined;
  await waitFor(
    `workers to poll ${queues === 'both' ? 'both task queues' : 'the workflow task queue'} again`,
    async () => {
      try {
        const workflow = await polledSince(
          env,
          env.workflowQueue,
          TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
          since,
          gonePid,
        );
        if (queues === 'workflow') return workflow;
        return (
          workflow && (await polledSince(env, env.agentQueue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, since, undefined))
        );
      } catch {
        return false; // Temporal is still starting
      }
    },
    { timeoutMs, intervalMs: 100 },
  );
  const pollingAgainMs = Date.now() - since;
  await waitFor('the service to be ready', () => serving(env), { timeoutMs, intervalMs: 100 });
  return pollingAgainMs;
}
