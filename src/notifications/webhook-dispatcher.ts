import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { retryDelayMs, WEBHOOK_RETRY, type RetryPolicy } from './backoff';
import { NotificationStore, type ClaimedNotification } from './notification-store';
import { describeUrl, postWebhook, webhookRequest } from './webhook-request';

export interface WebhookDispatcherOptions {
  pool: Pool;
  urls: string[];
  /** The HMAC key. Never logged. */
  secret: string;
  logger: Logger;
  /** How often it looks for due notifications. */
  intervalMs?: number;
  /** Per request. */
  timeoutMs?: number;
  batchSize?: number;
  retry?: RetryPolicy;
  /** How long delivered and given-up notifications stay in the table, counted from the event. */
  retentionMs: number;
}

/** How often a dispatcher deletes finished notifications: retention is counted in days. */
const PRUNE_INTERVAL_MS = 60 * 60_000;

/**
 * Delivers the `notifications` outbox to the configured webhook URLs: every second it claims the due
 * rows (safe with any number of dispatchers, see NotificationStore), POSTs each to every URL, marks it
 * delivered when all answered 2xx, and otherwise schedules a retry with exponential backoff (every URL
 * again: receivers deduplicate by the delivery id) until a day has passed. Hourly, it deletes the
 * finished rows older than the retention, so the table stays small. Runs in the workflow worker.
 */
export class WebhookDispatcher {
  private readonly store: NotificationStore;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private readonly retry: RetryPolicy;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private nextPruneAt = 0;

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.store = new NotificationStore(opts.pool);
    this.intervalMs = opts.intervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batchSize = opts.batchSize ?? 20;
    this.retry = opts.retry ?? WEBHOOK_RETRY;
  }

  start(): void {
    this.opts.logger.info({ urls: this.opts.urls.map(describeUrl) }, 'webhook dispatcher started');
    this.schedule(0);
  }

  /** Stops looking for work and waits for the round in flight (its requests time out on their own). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .catch((err: unknown) => this.opts.logger.warn({ error: (err as Error).message }, 'webhook round failed'))
        .finally(() => this.schedule(this.intervalMs));
    }, delayMs);
  }

  /**
   * Deletes old finished notifications when an hour has passed since it last did, then claims and
   * delivers due ones; a full batch means more may be due, so it goes on at once.
   */
  async round(): Promise<void> {
    if (Date.now() >= this.nextPruneAt) {
      const deleted = await this.store.deleteFinished(this.opts.retentionMs);
      this.nextPruneAt = Date.now() + PRUNE_INTERVAL_MS;
      if (deleted > 0) this.opts.logger.info({ deleted }, 'finished notifications deleted');
    }
    for (;;) {
      // A claim outlasts the slowest round: every URL timing out in turn, plus a margin.
      const claimSeconds = (this.opts.urls.length * this.timeoutMs) / 1000 + 30;
      const due = await this.store.claimDue(this.batchSize, claimSeconds);
      await Promise.all(due.map((n) => this.deliver(n)));
      if (due.length < this.batchSize || this.stopped) return;
    }
  }

  private async deliver(n: ClaimedNotification): Promise<void> {
    const request = webhookRequest(n, this.opts.secret);
    const errors: string[] = [];
    for (const url of this.opts.urls) {
      const error = await postWebhook(url, request, this.timeoutMs);
      if (error !== undefined) errors.push(`${describeUrl(url)}: ${error}`);
    }
    const attempt = n.attempts + 1;
    if (errors.length === 0) {
      await this.store.markDelivered(n.id);
      this.opts.logger.info({ delivery: n.id, type: n.type, attempt }, 'webhook delivered');
      return;
    }
    const error = errors.join('; ');
    const delayMs = retryDelayMs(attempt, this.retry);
    const retrying = await this.store.markFailed(n.id, error, delayMs, this.retry.giveUpAfterMs);
    if (retrying) {
      this.opts.logger.warn(
        { delivery: n.id, type: n.type, attempt, error, retryInMs: delayMs },
        'webhook not accepted',
      );
    } else {
      this.opts.logger.error({ delivery: n.id, type: n.type, attempt, error }, 'webhook given up');
    }
  }
}
