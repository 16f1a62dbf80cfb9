import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { Pool } from 'pg';
import { ensureDatabase, migrate } from '../../src/db/migrate';
import { retryTransient } from '../../src/db/transient';
import { startDevServer } from '../../src/temporal/dev-server';
import { freePort } from '../../src/net/free-port';
import { servingWithWorkers } from '../../src/up/serving-with-workers';
import { startStack, type Stack } from '../support/stack';
import { ROOT, uniqueQueue } from '../support/test-env';
import { TEMPORAL_BIN } from '../support/test-services';
import { waitFor } from '../support/wait-for';
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres';

export const CHAOS_AGENTS_FILE = resolve(ROOT, 'test/chaos/agents.yaml');

export interface ChaosEnv {
  stack: Stack;
  pg: PrivatePostgres;
  pool: Pool;
  temporal: Client;
  temporalAddress: string;
  databaseUrl: string;
  workflowQueue: string;
  agentQueue: string;
  /** Kills the Temporal dev server (SIGKILL) and starts it again on the same port and file. */
  restartTemporal: (downMs: number) => Promise<void>;
  stop: () => Promise<void>;
}

/**
 * Everything a chaos scenario may break, all its own: a private PostgreSQL cluster, a Temporal dev
 * server with a persistent file, and the service started as `npm run up` starts it.
 */
export async function startChaosEnv(slots: number): Promise<ChaosEnv> {
  const pg = await startPrivatePostgres();
  try {
    return await startOnPostgres(pg, slots);
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

async function startOnPostgres(pg: PrivatePostgres, slots: number): Promise<ChaosEnv> {
  const databaseUrl = pg.url('atelier');
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);

  const dataDir = mkdtempSync(join(tmpdir(), 'atelier-chaos-temporal-'));
  const port = await freePort();
  const temporalAddress = `127.0.0.1:${port}`;
  const startTemporal = () =>
    startDevServer(
      {
        binary: TEMPORAL_BIN,
        dbFile: join(dataDir, 'temporal.sqlite'),
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
  const stopTemporal = async (): Promise<void> => {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };

  const workflowQueue = uniqueQueue('chaos-wf');
  const agentQueue = uniqueQueue('chaos-agents');
  const stack = await startStack({
    TEMPORAL_ADDRESS: temporalAddress,
    DATABASE_URL: databaseUrl,
    ATELIER_AGENTS_FILE: CHAOS_AGENTS_FILE,
    ATELIER_WORKFLOW_QUEUE: workflowQueue,
    ATELIER_AGENT_QUEUE: agentQueue,
    ATELIER_AGENT_SLOTS: String(slots),
    ATELIER_RETRY_BACKOFF_SECONDS: '0.5',
    LOG_LEVEL: 'error',
  }).catch(async (err: unknown) => {
    await stopTemporal();
    throw err;
  });
  const pool = new Pool({ connectionString: databaseUrl, max: 4 });
  pool.on('error', () => undefined); // a restarted server drops idle clients; the next query reconnects
  const temporal = new Client({ connection: Connection.lazy({ address: temporalAddress }) });

  return {
    stack,
    pg,
    pool,
    temporal,
    temporalAddress,
    databaseUrl,
    workflowQueue,
    agentQueue,
    restartTemporal: async (downMs) => {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGKILL');
      await exited;
      await new Promise((r) => setTimeout(r, downMs));
      server = await startTemporal();
    },
    stop: async () => {
      await stack.stop();
      await temporal.connection.close();
      await pool.end();
      await stopTemporal();
      await pg.stop();
    },
  };
}

/** A query that waits out a restarting database, as the service's own writes do. */
export const query = <R extends Record<string, unknown>>(env: ChaosEnv, text: string, values?: unknown[]) =>
  retryTransient(() => env.pool.query<R>(text, values), 60_000);

const serving = (env: ChaosEnv): Promise<boolean> => servingWithWorkers(env.stack.baseUrl).catch(() => false);

/** What /health/ready said from a disruption on, asked every 100 ms. */
export interface ReadinessWatch {
  /**
   * Stops asking: when the first question answered "not ready" was asked (the outage had begun by
   * then), and when the first question asked after it came back "ready" (the service was ready by
   * then), from the start.
   */
  stop: () => Promise<{ notReadyAfterMs?: number; readyAgainAfterMs?: number }>;
}

/**
 * Starts watching /health/ready (ready, with workers polling both task queues) now. A question is sent
 * every 100 ms whether the one before has been answered or not (an answer may wait for the API's
 * own check deadline, longer than a short outage), each timed when it was sent and when answered.
 */
export function watchReadiness(env: ChaosEnv): ReadinessWatch {
  const started = Date.now();
  const answers: Promise<{ sentAt: number; answeredAt: number; ready: boolean }>[] = [];
  const ask = (): void => {
    const sentAt = Date.now();
    answers.push(serving(env).then((ready) => ({ sentAt, answeredAt: Date.now(), ready })));
  };
  ask();
  const timer = setInterval(ask, 100);
  return {
    stop: async () => {
      clearInterval(timer);
      const all = (await Promise.all(answers)).sort((a, b) => a.sentAt - b.sentAt);
      const notReady = all.find((a) => !a.ready);
      const readyAgain =
        notReady && Math.min(...all.filter((a) => a.ready && a.sentAt > notReady.sentAt).map((a) => a.answeredAt));
      return {
        notReadyAfterMs: notReady && notReady.sentAt - started,
        readyAgainAfterMs: readyAgain === undefined || readyAgain === Infinity ? undefined : readyAgain - started,
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
