import type { Command } from 'commander';
import { ApiError } from '../api-client';
import type { Cli } from '../context';
import { EXIT } from '../exit-codes';
import { agoText, durationText, table } from '../format';
import type { Action } from './action';

/** The parts of `GET /v1/workers` shown; anything missing shows as '-'. */
export interface WorkerDoc {
  identity: string;
  kind?: string;
  status?: string;
  taskQueues?: string[];
  lastPollAt?: string | null;
  lastHeartbeatAt?: string | null;
  slots?: { mode?: string; total?: number; used?: number; free?: number };
  runningTasks?: unknown[];
  completed?: number;
  failed?: number;
  successRate?: number | null;
}

export interface QueueDoc {
  name: string;
  type?: string;
  backlog?: number | null;
  backlogAgeSeconds?: number | null;
  pollers?: number | null;
  error?: string | null;
}

export interface WorkersDoc {
  workers: WorkerDoc[];
  queues: QueueDoc[];
}

const percent = (rate: number | null | undefined): string =>
  rate === null || rate === undefined ? '-' : `${Math.round(rate * 100)}%`;

export const workersTable = (workers: WorkerDoc[]): string =>
  table(
    ['WORKER', 'KIND', 'STATUS', 'QUEUE', 'SLOTS', 'RUNNING', 'DONE', 'FAILED', 'SUCCESS', 'LAST POLL'],
    workers.map((w) => [
      w.identity,
      w.kind,
      w.status,
      w.taskQueues?.join(','),
      w.slots?.total ? `${w.slots.used ?? 0}/${w.slots.total}` : '',
      w.runningTasks?.length,
      w.completed,
      w.failed,
      percent(w.successRate),
      agoText(w.lastPollAt),
    ]),
  );

export const queuesTable = (queues: QueueDoc[]): string =>
  table(
    ['QUEUE', 'TYPE', 'BACKLOG', 'OLDEST', 'POLLERS'],
    queues.map((q) => [
      q.name,
      q.type,
      q.error ? `error: ${q.error}` : q.backlog,
      q.backlogAgeSeconds ? durationText(q.backlogAgeSeconds * 1000) : '',
      q.pollers,
    ]),
  );

/** The API has no `GET /v1/workers` (an older server). */
export class NoWorkersEndpoint extends Error {}

/** GET /v1/workers, with a clear message when the server predates it. */
export async function fetchWorkers(
  cli: Cli,
  { all = false, signal }: { all?: boolean; signal?: AbortSignal } = {},
): Promise<WorkersDoc> {
  try {
    return await cli.api.json<WorkersDoc>('GET', `/v1/workers${all ? '?all=true' : ''}`, { signal });
  } catch (err) {
    if (err instanceof ApiError && err.routeMissing) {
      throw new NoWorkersEndpoint(
        `this Atelier API (${cli.api.baseUrl}) has no workers endpoint: GET /v1/workers answered 404. ` +
          'It needs a newer server.',
      );
    }
    throw err;
  }
}

const workers: Action = async (cli, opts: { all?: boolean }) => {
  const doc = await fetchWorkers(cli, { all: opts.all === true });
  if (cli.json) {
    cli.printJson(doc);
    return EXIT.ok;
  }
  cli.out(workersTable(doc.workers ?? []));
  cli.out(`\n${queuesTable(doc.queues ?? [])}`);
  return EXIT.ok;
};

export function registerWorkersCommand(
  program: Command,
  bind: (action: Action) => (...args: unknown[]) => Promise<void>,
) {
  program
    .command('workers')
    .description('workers (slots, running tasks, success rate) and the backlog of each task queue')
    .option('--all', 'also workers that stopped or went silent a while ago')
    .action(bind(workers));
}
