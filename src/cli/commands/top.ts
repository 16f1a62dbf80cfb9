import { setTimeout as delay } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { DashboardSnapshot } from '../../api/dashboard/snapshot';
import { ApiError } from '../api-client';
import { isTransient } from '../retry';
import type { Cli } from '../context';
import { EXIT } from '../exit-codes';
import { printableInline, printableLine } from '../printable';
import { durationText, fitLine, table } from '../format';
import type { Action } from './action';
import { fetchWorkers, NoWorkersEndpoint, workersTable, type WorkersDoc } from './workers';

const seconds = (s: number | null | undefined): string => (s === null || s === undefined ? '' : durationText(s * 1000));

/** A terminal's size, in characters. */
interface ScreenSize {
  rows: number;
  columns: number;
}

/** What a request that failed is shown as: the status an API answered, else what went wrong. */
const failedText = (err: unknown): string =>
  err instanceof ApiError ? `${err.method} ${err.path} answered ${err.status}` : (err as Error).message;

/**
 * One screen of `atelier top`: on a terminal (`screen` given), cut to its rows (the last one shown then
 * says how many more there are) and each line to its width, since a line that wraps takes two rows and
 * scrolls the alternate screen; else whole. `workers`: GET /v1/workers's answer, why it failed (shown
 * in place of the table), or undefined from a server without it (the dashboard's shorter list instead).
 */
export function renderTop(
  baseUrl: string,
  s: DashboardSnapshot,
  workers: WorkersDoc | { failed: string } | undefined,
  screen?: ScreenSize,
): string {
  const c = s.counts;
  const lines: string[] = [
    `Atelier  ${baseUrl}  ${new Date(s.generatedAt).toLocaleTimeString()}    ` +
      `queued ${c.queued}  running ${c.running}  last hour: succeeded ${c.succeededLastHour}, ` +
      `failed ${c.failedLastHour}, cancelled ${c.cancelledLastHour}`,
    '',
    'QUEUES',
    table(
      ['QUEUE', 'POOL', 'WAITING', 'OLDEST', 'BACKLOG', 'BACKLOG AGE', 'POLLERS'],
      s.queues.map((q) => [
        q.name,
        q.role,
        q.waitingTasks,
        seconds(q.oldestWaitingSeconds),
        q.error ? 'unavailable' : q.backlog,
        seconds(q.backlogAgeSeconds),
        q.pollers,
      ]),
    ),
    'WORKERS',
    workers && 'failed' in workers
      ? printableLine(`not shown: ${workers.failed} (asked again at the next update)`)
      : workers
        ? workersTable(workers.workers ?? [])
        : table(
            ['WORKER', 'POOL', 'HEALTHY', 'RUNNING', 'DONE (1H)', 'FAILED (1H)'],
            s.workers.map((w) => [
              w.identity,
              w.role,
              w.healthy ? 'yes' : 'NO',
              w.running,
              w.succeededLastHour,
              w.failedLastHour,
            ]),
          ),
    // The snapshot lists the first 50 running tasks: the heading gives how many run in all.
    `RUNNING (${s.running.length < c.running ? `${s.running.length} of ${c.running}` : c.running})`,
    table(
      ['TASK', 'AGENT', 'ATTEMPT', 'WORKER', 'ELAPSED'],
      s.running.map((t) => [t.id, t.agent, t.attempt, t.worker, seconds(t.elapsedSeconds)]),
    ),
  ];
  if (s.failures.attemptsByClass.length > 0) {
    const classes = s.failures.attemptsByClass.map((f) => `${printableInline(f.class)} ${f.count}`);
    lines.push(`FAILED ATTEMPTS (1H): ${classes.join(', ')}`);
  }
  const text = lines.join('\n').split('\n');
  if (!screen) return `${text.join('\n')}\n`;
  // The terminal's last row is the caller's `(q to quit)`.
  const room = Math.max(screen.rows - 1, 1);
  // A blank line at the end is no line to say was cut.
  while (text.length > room && text.at(-1) === '') text.pop();
  const cut = text.length > room ? [...text.slice(0, room - 1), `… ${text.length - room + 1} more lines`] : text;
  return `${cut.map((l) => fitLine(l, screen.columns)).join('\n')}\n`;
}

async function snapshotOf(cli: Cli, signal: AbortSignal): Promise<DashboardSnapshot> {
  try {
    return await cli.api.json<DashboardSnapshot>('GET', '/v1/dashboard', { signal });
  } catch (err) {
    if (err instanceof ApiError && err.routeMissing) {
      throw new Error(
        `this Atelier API (${cli.api.baseUrl}) has no dashboard endpoint (GET /v1/dashboard); it needs a newer server`,
      );
    }
    throw err;
  }
}

/**
 * A live view of queues, workers and running tasks, redrawn every `--interval` seconds until q or
 * Ctrl-C. `--once` draws once; `--json` prints each snapshot as a JSON line instead.
 */
const top: Action = async (cli, opts: { interval: number; once?: boolean }) => {
  const interactive = !opts.once && !cli.json && cli.io.stdout.isTTY === true;
  const screenSize = (): ScreenSize => ({ rows: cli.io.stdout.rows ?? 50, columns: cli.io.stdout.columns ?? 80 });
  // q or Ctrl-C aborts the request or the wait under way, so nothing keeps the process alive.
  const stop = new AbortController();
  const { signal } = stop;
  const finish = (): void => stop.abort();
  const onKey = (key: Buffer | string): void => {
    const k = key.toString();
    if (k === 'q' || k === 'Q' || k === '\u0003') finish();
  };
  process.once('SIGINT', finish);
  if (interactive) {
    cli.io.stdin.setRawMode?.(true);
    cli.io.stdin.on('data', onKey);
    cli.io.stdin.resume();
    cli.out('\x1b[?1049h\x1b[?25l');
  }
  // Once a snapshot has been shown, an API that restarts (refused connections, a proxy's 502-504)
  // interrupts the view, not ends it: the next update comes after the interval as ever. A first
  // request that fails is most likely a wrong URL, said at once.
  let shownOne = false;
  try {
    for (;;) {
      let snapshot: DashboardSnapshot;
      try {
        snapshot = await snapshotOf(cli, signal);
      } catch (err) {
        if (opts.once || !shownOne || signal.aborted || !isTransient(err)) throw err;
        const message = `${failedText(err)}; trying again every ${opts.interval} s`;
        if (cli.json) cli.printJsonLine({ error: message });
        else if (interactive)
          cli.out(
            `\x1b[H\x1b[2J${fitLine(`Atelier  ${cli.api.baseUrl}  ${printableLine(message)}`, screenSize().columns)}\n(q to quit)`,
          );
        else cli.note(`atelier: ${message}`);
        await delay(opts.interval * 1000, undefined, { signal });
        continue;
      }
      shownOne = true;
      // The workers endpoint has more (slots, status); servers without it still get a picture. Where it
      // fails, the screen says so rather than show the dashboard's shorter list in its place.
      const workers = await fetchWorkers(cli, { signal }).catch((err: unknown) =>
        err instanceof NoWorkersEndpoint ? undefined : { failed: failedText(err) },
      );
      signal.throwIfAborted();
      if (cli.json)
        cli.printJsonLine({ dashboard: snapshot, workers: workers && !('failed' in workers) ? workers : null });
      else if (interactive) {
        const screen = renderTop(cli.api.baseUrl, snapshot, workers, screenSize());
        cli.out(`\x1b[H\x1b[2J${screen}(q to quit)`);
      } else cli.out(renderTop(cli.api.baseUrl, snapshot, workers));
      if (opts.once) break;
      await delay(opts.interval * 1000, undefined, { signal });
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    process.off('SIGINT', finish);
    if (interactive) {
      cli.io.stdin.off('data', onKey);
      cli.io.stdin.setRawMode?.(false);
      cli.io.stdin.pause();
      cli.out('\x1b[?25h\x1b[?1049l');
    }
  }
  return EXIT.ok;
};

export function registerTopCommand(program: Command, bind: (action: Action) => (...args: unknown[]) => Promise<void>) {
  program
    .command('top')
    .description('live view of queues, workers and running tasks (q to quit)')
    .option(
      '-n, --interval <seconds>',
      'seconds between updates',
      (v: string) => {
        const n = Number(v);
        if (!(n >= 0.5 && n <= 3600)) throw new InvalidArgumentError('--interval must be from 0.5 to 3600');
        return n;
      },
      2,
    )
    .option('--once', 'print one screen and exit')
    .action(bind(top));
}
