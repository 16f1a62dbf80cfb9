import { hostname } from 'node:os';
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { SlotMode, WorkerKind, WorkerStore } from '../store/worker-store';
import { ActivityTracker } from './activity-tracker';
import { startMetricsServer, type MetricsServer } from './metrics-server';
import type { TemporalMetrics } from './temporal-metrics';

/** How often a worker reports itself in the registry. */
export const WORKER_HEARTBEAT_MS = 5000;
/**
 * The shortest time between two writes of a worker's row for agent attempts that start or end. A
 * change after a quiet spell, or one that leaves the worker idle, is written at once; the changes of a
 * busy worker share a write at most this late, so it writes its row a couple of times a second rather
 * than twice a task.
 */
export const WORKER_CHANGE_INTERVAL_MS = 500;

export interface WorkerObservabilityOptions {
  kind: WorkerKind;
  identity: string;
  taskQueue: string;
  slots: { mode: SlotMode; total: number };
  /** Listen address and port of GET /metrics; `off` serves none. */
  metricsHost: string;
  metricsPort: number | 'off';
  store: WorkerStore;
  temporal: TemporalMetrics;
  logger: Logger;
}

/**
 * Everything a worker process tells the outside about itself: `GET /metrics` (Atelier's metrics, then the
 * Temporal SDK's), and its row in the worker registry, written at start, every few seconds, when an
 * agent attempt starts or ends (see WORKER_CHANGE_INTERVAL_MS), and a last time when it stops.
 */
export class WorkerObservability {
  readonly registry = new Registry();
  readonly tracker: ActivityTracker;
  private worker: Worker | undefined;
  private server: MetricsServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private changeTimer: NodeJS.Timeout | undefined;
  private lastWriteAt = 0;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private lastErrorLogged = 0;

  constructor(private readonly opts: WorkerObservabilityOptions) {
    collectDefaultMetrics({ register: this.registry });
    this.tracker = new ActivityTracker(this.registry, () => this.changed());
    const labels = { worker_kind: opts.kind, task_queue: opts.taskQueue };
    const slotsUsed = (): number => this.slotsUsed();
    new Gauge({
      name: 'atelier_worker_slots_used',
      help: 'Task slots in use: running agent attempts (agent worker) or workflow tasks in hand (workflow worker).',
      labelNames: ['worker_kind', 'task_queue'],
      registers: [this.registry],
      collect() {
        this.set(labels, slotsUsed());
      },
    });
    new Gauge({
      name: 'atelier_worker_slots_total',
      help: 'Task slots of this worker: its fixed limit, or the resource-based tuner maximum.',
      labelNames: ['worker_kind', 'task_queue', 'slot_mode'],
      registers: [this.registry],
    }).set({ ...labels, slot_mode: opts.slots.mode }, opts.slots.total);
  }

  /** Starts serving GET /metrics; throws when the port cannot be had. Call before creating the worker. */
  async listen(): Promise<void> {
    const { opts } = this;
    if (opts.metricsPort === 'off') return;
    try {
      this.server = await startMetricsServer(
        {
          host: opts.metricsHost,
          port: opts.metricsPort,
          render: () => this.render(),
          ready: () => this.worker?.getState() === 'RUNNING',
          onError: (err) => opts.logger.warn({ error: err.message }, 'could not render metrics'),
        },
        hostname(),
      );
    } catch (err) {
      throw new Error(`cannot serve metrics on ${opts.metricsHost}:${opts.metricsPort}: ${(err as Error).message}`);
    }
    opts.logger.info({ metricsUrl: this.server.url }, 'serving metrics');
  }

  /** Registers the worker and heartbeats it until stop(). Never throws: the registry is informational. */
  async attach(worker: Worker): Promise<void> {
    this.worker = worker;
    await this.opts.store.prune().catch(() => undefined);
    this.timer = setInterval(() => this.kick(), WORKER_HEARTBEAT_MS);
    this.timer.unref();
    this.kick();
    await this.writing;
  }

  /** Records the worker as stopped and closes the metrics endpoint. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    clearTimeout(this.changeTimer);
    this.changeTimer = undefined;
    await this.writing;
    if (this.worker) await this.write(true);
    await this.server?.close();
  }

  private async render(): Promise<{ contentType: string; body: string }> {
    const [own, sdk] = await Promise.all([this.registry.metrics(), this.opts.temporal.scrape()]);
    return { contentType: this.registry.contentType, body: sdk ? `${own}\n${sdk}` : own };
  }

  /**
   * An agent worker's running agents, as the tracker sees them in all of the process's workers (the
   * worker's own status would count only its first worker, and the worktrees' git operations too);
   * a workflow worker's workflow tasks in hand.
   */
  private slotsUsed(): number {
    if (this.opts.kind === 'agent') return this.tracker.snapshot().running.length;
    return this.worker?.getStatus().numInFlightWorkflowActivations ?? 0;
  }

  /** An attempt started or ended: writes the row now, or with the other changes of the next interval. */
  private changed(): void {
    if (!this.timer) return;
    const wait = this.lastWriteAt + WORKER_CHANGE_INTERVAL_MS - Date.now();
    if (wait <= 0 || this.tracker.runningCount === 0) {
      clearTimeout(this.changeTimer);
      this.changeTimer = undefined;
      this.kick();
      return;
    }
    if (this.changeTimer) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      this.kick();
    }, wait);
    this.changeTimer.unref();
  }

  /** Writes a heartbeat now, or right after the one in flight: writes never overlap or reorder. */
  private kick(): void {
    if (!this.worker || !this.timer) return;
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(() => {
      this.dirty = false;
      return this.write(false);
    });
  }

  private async write(stopped: boolean): Promise<void> {
    if (!this.worker) return;
    this.lastWriteAt = Date.now();
    const snapshot = this.tracker.snapshot();
    try {
      const { opts } = this;
      await opts.store.report(
        {
          identity: opts.identity,
          kind: opts.kind,
          taskQueue: opts.taskQueue,
          host: hostname(),
          pid: process.pid,
          metricsUrl: this.server?.url ?? null,
          slotMode: opts.slots.mode,
          slotsTotal: opts.slots.total,
        },
        {
          state: this.worker.getState(),
          slotsUsed: this.slotsUsed(),
          ...snapshot,
        },
        stopped,
      );
    } catch (err) {
      // The registry is for people and dashboards: a database hiccup must not disturb running agents.
      if (Date.now() - this.lastErrorLogged > 60_000) {
        this.lastErrorLogged = Date.now();
        this.opts.logger.warn({ error: (err as Error).message }, 'could not record worker heartbeat');
      }
    }
  }
}
