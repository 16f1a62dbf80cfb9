import type { Command } from 'commander';
import type { History } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { EXIT } from '../exit-codes';
import { printableLine } from '../printable';
import { integer } from '../options';
import type { Action } from './action';
import { historySources, type Source, type Unavailable } from './replay-sources';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The upper bound of `--limit`, as the other integer options have one. */
const MAX_LIMIT = 100_000;

interface ReplayOptions {
  query?: string;
  limit: number;
  address: string;
  namespace: string;
}

/** The event at which the current code stops matching a history. */
export interface DifferingEvent {
  eventId: number;
  eventType: string;
  detail?: string;
}

export interface ReplayReport {
  source: string;
  /** Absent for a `--query` that could not be run. */
  workflowId?: string;
  runId?: string;
  ok: boolean;
  error?: { kind: 'nondeterminism' | 'replay' | 'unavailable'; message: string; event?: DifferingEvent };
}

/** `EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` → `ActivityTaskScheduled`. */
const typeName = (proto: typeof temporal, type: unknown): string => {
  const name = typeof type === 'number' ? proto.api.enums.v1.EventType[type] : String(type ?? 'unknown');
  return (name ?? 'unknown')
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
};

/** The names in an event that tell a reader which command it was (activity type, timer id, …). */
function eventDetail(event: HistoryEvent): string | undefined {
  for (const [key, value] of Object.entries(event)) {
    if (!key.endsWith('Attributes') || value === null || typeof value !== 'object') continue;
    const attrs = value as Record<string, unknown>;
    const named = (field: string): string | undefined => {
      const v = attrs[field] as { name?: string } | string | undefined;
      return typeof v === 'string' ? v : v?.name;
    };
    const parts = [
      named('activityType') && `activity ${named('activityType')}`,
      named('workflowType') && `workflow ${named('workflowType')}`,
      typeof attrs.timerId === 'string' && `timer ${attrs.timerId}`,
      typeof attrs.markerName === 'string' && `marker ${attrs.markerName}`,
      typeof attrs.signalName === 'string' && `signal ${attrs.signalName}`,
    ].filter((p): p is string => typeof p === 'string' && p !== '');
    if (parts.length > 0) return parts.join(', ');
  }
  return undefined;
}

/** The core's message inside the SDK's wrapping, e.g. `[TMPRL1100] Nondeterminism error: …`. */
const coreMessage = (message: string): string => /message: "((?:[^"\\]|\\.)*)"/.exec(message)?.[1] ?? message;

/**
 * Replays histories against the workflow code this CLI was built with (the prebuilt bundle), the way a
 * worker would after a deploy. For a determinism error, replays ever shorter prefixes of the history to
 * find the first event the code no longer matches.
 */
async function replayAll(sources: AsyncGenerator<Source, void>): Promise<ReplayReport[]> {
  // No replay worker when nothing is to be replayed (every history unavailable).
  const first = await sources.next();
  if (first.done) return [];
  const { DefaultLogger, Runtime, Worker } = await import('@temporalio/worker');
  const { DeterminismViolationError } = await import('@temporalio/workflow');
  const { temporal: proto } = await import('@temporalio/proto');
  const { workflowCodeOption } = await import('../../workers/workflow-bundle');
  // The replay worker logs every failed activation; the report below says it once, better.
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  const options = { ...workflowCodeOption() };

  const replaysCleanly = async (history: History, length: number): Promise<boolean> => {
    try {
      await Worker.runReplayHistory(options, { ...history, events: history.events?.slice(0, length) }, 'prefix');
      return true;
    } catch {
      return false;
    }
  };
  /** The shortest failing prefix ends at the event that differs (a prefix of a good history replays). */
  const firstDiffering = async (history: History): Promise<DifferingEvent | undefined> => {
    const events = history.events ?? [];
    let good = 0;
    let bad = events.length;
    while (bad - good > 1) {
      const mid = Math.floor((good + bad) / 2);
      if (await replaysCleanly(history, mid)) good = mid;
      else bad = mid;
    }
    const event = events[bad - 1];
    if (!event) return undefined;
    return { eventId: Number(event.eventId), eventType: typeName(proto, event.eventType), detail: eventDetail(event) };
  };

  const reports: ReplayReport[] = [];
  // The replay takes one history at a time and answers it before it takes the next: the source under
  // way is kept by its key until its answer, then let go.
  const replaying = new Map<string, Source>();
  let taken = 0;
  async function* keyed(): AsyncGenerator<{ workflowId: string; history: History }, void> {
    try {
      for (let next = first; !next.done; next = await sources.next()) {
        const workflowId = String(taken++);
        replaying.set(workflowId, next.value);
        yield { workflowId, history: next.value.history };
      }
    } finally {
      await sources.return();
    }
  }
  for await (const result of Worker.runReplayHistories(options, keyed())) {
    const source = replaying.get(result.workflowId);
    replaying.delete(result.workflowId);
    if (!source) continue;
    const base = { source: source.source, workflowId: source.workflowId, runId: source.runId };
    if (!result.error) {
      reports.push({ ...base, ok: true });
      continue;
    }
    const nondeterminism = result.error instanceof DeterminismViolationError;
    reports.push({
      ...base,
      ok: false,
      error: {
        kind: nondeterminism ? 'nondeterminism' : 'replay',
        message: coreMessage(result.error.message),
        event: nondeterminism ? await firstDiffering(source.history) : undefined,
      },
    });
  }
  return reports;
}

const replay: Action = async (cli, targets: string[], opts: ReplayOptions) => {
  if (targets.length === 0 && opts.query === undefined) {
    cli.note('nothing to replay: name history files or workflow ids, or give --query');
    return EXIT.usage;
  }
  const failed: Unavailable[] = [];
  const replayed = await replayAll(
    historySources(targets, { ...opts, env: cli.io.env, note: (line) => cli.note(line) }, failed),
  );
  // What could not be read or downloaded first, as every history is replayed before anything is shown.
  const reports: ReplayReport[] = [...failed, ...replayed];
  const replayFailures = reports.filter((r) => !r.ok && r.error?.kind !== 'unavailable').length;
  if (cli.json) {
    cli.printJson({
      replayed: reports.length - failed.length,
      failed: replayFailures,
      unavailable: failed.length,
      results: reports,
    });
  } else {
    for (const r of reports) {
      const name = r.runId ? `${r.source} (run ${r.runId})` : r.source;
      if (r.ok) {
        cli.out(`✔ ${name}\n`);
        continue;
      }
      const at = r.error?.event
        ? ` at event ${r.error.event.eventId} (${r.error.event.eventType}${r.error.event.detail ? `: ${r.error.event.detail}` : ''})`
        : '';
      const what =
        r.error?.kind === 'nondeterminism'
          ? 'nondeterminism'
          : r.error?.kind === 'replay'
            ? 'replay failed'
            : 'not replayed';
      // The message and event details come from Temporal or a history file: made safe for a terminal.
      cli.out(`${printableLine(`✖ ${name}: ${what}${at}\n    ${r.error?.message ?? ''}`)}\n`);
    }
    cli.note(
      `${reports.length - failed.length} replayed, ${replayFailures} failed${failed.length > 0 ? `, ${failed.length} not available` : ''}`,
    );
  }
  if (replayFailures > 0) return EXIT.replayFailed;
  return failed.length > 0 ? EXIT.error : EXIT.ok;
};

export function registerReplayCommand(
  program: Command,
  bind: (action: Action) => (...args: unknown[]) => Promise<void>,
  env: NodeJS.ProcessEnv,
) {
  program
    .command('replay')
    .description('replay workflow histories against the current workflow code; report any nondeterminism')
    .argument('[targets...]', 'history JSON files, workflow ids, or task ids (downloaded from Temporal)')
    .option(
      '-q, --query <query>',
      'replay every workflow a visibility query matches, e.g. "WorkflowType = \'agentTaskWorkflow\'"',
    )
    .option('--limit <n>', 'at most this many workflows from --query', integer('--limit', 1, MAX_LIMIT), 1000)
    // Blank is unset, as everywhere else the variables are read.
    .option('--address <host:port>', 'Temporal frontend', env.TEMPORAL_ADDRESS?.trim() || '127.0.0.1:7233')
    .option('--namespace <namespace>', 'Temporal namespace', env.TEMPORAL_NAMESPACE?.trim() || 'default')
    .action(bind(replay));
}
