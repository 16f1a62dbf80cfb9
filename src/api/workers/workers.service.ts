import { Injectable } from '@nestjs/common';
import { WorkerStore, type WorkerKind, type WorkerRow, WORKER_LOST_AFTER_SECONDS } from '../../store/worker-store';
import { hostOfIdentity } from '../../workers/worker-identity';
import { temporalUnavailableText } from '../http/temporal-unavailable';
import { QueueStatsService, type QueueStats, type QueueType } from './queue-stats.service';

/** Without `all`, workers silent for longer than this are left out. */
export const LISTED_WITHIN_SECONDS = 300;
/** A poller Temporal last saw longer ago than this has stopped polling (long polls last about 60 s). */
const POLLER_FRESH_MS = 90_000;

export type WorkerStatus = 'running' | 'draining' | 'stopped' | 'lost';

const DRAINING_STATES = new Set(['STOPPING', 'DRAINING', 'DRAINED']);
const queueTypeOf = (kind: WorkerKind): QueueType => (kind === 'agent' ? 'activity' : 'workflow');

function statusOf(row: WorkerRow): WorkerStatus {
  if (row.stopped_at !== null) return 'stopped';
  if (row.heartbeat_age_seconds > WORKER_LOST_AFTER_SECONDS) return 'lost';
  return DRAINING_STATES.has(row.state) ? 'draining' : 'running';
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/**
 * GET /v1/workers: the worker registry (what each worker reports about itself) joined with Temporal's
 * view of each task queue (who polls it, and its backlog).
 */
@Injectable()
export class WorkersService {
  constructor(
    private readonly store: WorkerStore,
    private readonly queues: QueueStatsService,
  ) {}

  async list(all: boolean) {
    const rows = await this.store.list({ all, withinSeconds: LISTED_WITHIN_SECONDS });
    const wanted = new Map<string, { name: string; type: QueueType }>();
    for (const q of this.queues.configuredQueues()) wanted.set(`${q.type}:${q.name}`, q);
    for (const r of rows)
      wanted.set(`${queueTypeOf(r.kind)}:${r.task_queue}`, { name: r.task_queue, type: queueTypeOf(r.kind) });
    const described = await Promise.all(
      [...wanted.values()].map(
        async (q): Promise<{ queue: QueueStats } | { name: string; type: QueueType; error: string }> => {
          try {
            return { queue: await this.queues.describe(q.name, q.type) };
          } catch (err) {
            return { ...q, error: temporalUnavailableText(`could not describe task queue ${q.name}`, err) };
          }
        },
      ),
    );
    const stats = described.flatMap((d) => ('queue' in d ? [d.queue] : []));

    const lastPoll = new Map<string, Date>();
    for (const q of stats) {
      for (const p of q.pollers) {
        const seen = lastPoll.get(p.identity);
        if (p.lastAccessTime && (!seen || p.lastAccessTime > seen)) lastPoll.set(p.identity, p.lastAccessTime);
      }
    }
    const registered = new Set(rows.map((r) => r.identity));
    const workers = rows.map((r) => {
      const completed = Number(r.completed);
      const failed = Number(r.failed);
      return {
        identity: r.identity,
        kind: r.kind,
        status: statusOf(r),
        registered: true,
        host: r.host,
        pid: r.pid,
        taskQueues: [r.task_queue],
        startedAt: iso(r.started_at),
        lastHeartbeatAt: iso(r.heartbeat_at),
        lastPollAt: iso(lastPoll.get(r.identity) ?? null),
        slots: {
          mode: r.slot_mode,
          total: r.slots_total,
          used: r.slots_used,
          free: Math.max(0, r.slots_total - r.slots_used),
        },
        runningTasks: r.running,
        completed,
        failed,
        cancelled: Number(r.cancelled),
        successRate: completed + failed > 0 ? completed / (completed + failed) : null,
        metricsUrl: r.metrics_url,
      };
    });
    // Pollers Temporal knows that never registered: workers of another version, or not Atelier's own.
    const now = Date.now();
    for (const q of stats) {
      for (const p of q.pollers) {
        if (registered.has(p.identity) || !p.lastAccessTime || now - p.lastAccessTime.getTime() > POLLER_FRESH_MS)
          continue;
        registered.add(p.identity);
        workers.push({
          identity: p.identity,
          kind: q.type === 'activity' ? 'agent' : 'workflow',
          status: 'running',
          registered: false,
          host: hostOfIdentity(p.identity),
          pid: 0,
          taskQueues: [q.name],
          startedAt: null,
          lastHeartbeatAt: null,
          lastPollAt: iso(lastPoll.get(p.identity) ?? null),
          slots: { mode: 'fixed', total: 0, used: 0, free: 0 },
          runningTasks: [],
          completed: 0,
          failed: 0,
          cancelled: 0,
          successRate: null,
          metricsUrl: null,
        });
      }
    }
    return {
      workers,
      queues: described.map((d) =>
        'queue' in d
          ? {
              name: d.queue.name,
              type: d.queue.type,
              backlog: d.queue.backlog,
              backlogAgeSeconds: d.queue.backlogAgeSeconds,
              addRate: d.queue.addRate,
              dispatchRate: d.queue.dispatchRate,
              pollers: d.queue.pollers.filter(
                (p) => p.lastAccessTime && now - p.lastAccessTime.getTime() <= POLLER_FRESH_MS,
              ).length,
              error: null,
            }
          : {
              name: d.name,
              type: d.type,
              backlog: null,
              backlogAgeSeconds: null,
              addRate: null,
              dispatchRate: null,
              pollers: null,
              error: d.error,
            },
      ),
    };
  }
}
