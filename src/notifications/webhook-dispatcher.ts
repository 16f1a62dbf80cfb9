import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { TRANSIENT_RETRY_MS } from '../db/transient';
import { nextDelayMs, WEBHOOK_RETRY, type RetryPolicy } from './backoff';
import { STATEMENT_TIMEOUT_MS } from '../db/bounded-query';
import { NotificationStore, type ClaimedNotification } from './notification-store';
import { SilentTargets } from './silent-targets';
import { postWebhook, webhookRequest, type WebhookRefusal } from './webhook-request';
import { webhookTargets, type WebhookTarget } from './webhook-target';

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
  /** How long a URL that did not answer in time is sent nothing (SilentTargets). */
  holdOffMs?: number;
  /**
   * How long finished notifications stay in the table: counted from the event for delivered ones, from
   * the give-up for given-up ones (NotificationStore.deleteFinished).
   */
  retentionMs: number;
}

/** How often a dispatcher deletes finished notifications: retention is counted in days. */
const PRUNE_INTERVAL_MS = 60 * 60_000;

/** Rows a housekeeping statement deletes or gives up at most: each stays short on a large backlog. */
const HOUSEKEEPING_BATCH = 1000;

/**
 * Delivers the `notifications` outbox to the configured webhook URLs: every second it claims the due
 * rows (safe with any number of dispatchers, see NotificationStore) and POSTs each to every URL that has
 * not accepted it yet, recording each 2xx at once. A row is delivered when every URL has accepted it;
 * otherwise it is retried with exponential backoff, to the URLs still missing, until a day has passed
 * since the event. Hourly, it deletes the finished rows older than the retention, so the table stays
 * small. Runs in the workflow worker.
 */
export class WebhookDispatcher {
  private readonly store: NotificationStore;
  private readonly targets: WebhookTarget[];
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly batchSize: number;
  private readonly retry: RetryPolicy;
  private readonly silent: SilentTargets;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private nextPruneAt = 0;

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.store = new NotificationStore(opts.pool);
    this.targets = webhookTargets(opts.urls, opts.secret);
    this.intervalMs = opts.intervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.batchSize = opts.batchSize ?? 20;
    this.retry = opts.retry ?? WEBHOOK_RETRY;
    this.silent = new SilentTargets(this.timeoutMs, opts.holdOffMs);
  }

  start(): void {
    this.opts.logger.info({ urls: this.targets.map((t) => t.label) }, 'webhook dispatcher started');
    this.schedule(0);
  }

  /** Stops looking for work and waits for the round in flight (its requests and statements time out on their own). */
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
   * Deletes old finished notifications when an hour has passed since it last did, gives up due ones
   * past the give-up window, then claims and delivers the other due ones; a full batch means more may
   * be due, so it goes on at once. A housekeeping step that fails (a statement timeout, say) is logged
   * and does not hold delivery back.
   */
  async round(): Promise<void> {
    await this.housekeeping('delete finished notifications', () => this.prune());
    await this.housekeeping('give up expired notifications', () => this.giveUpExpired());
    for (;;) {
      // A claim outlasts the slowest round: the claim's own answer (set as the statement ran, answered
      // up to a statement timeout later), the URLs timing out (all at once), then an acceptance and the
      // outcome written, each retried through a database outage and its last try bounded by the
      // statement timeout, plus a margin (waits for a pooled connection, too).
      const writeMs = TRANSIENT_RETRY_MS + STATEMENT_TIMEOUT_MS;
      const claimSeconds = (STATEMENT_TIMEOUT_MS + this.timeoutMs + 2 * writeMs) / 1000 + 30;
      const due = await this.store.claimDue(this.batchSize, claimSeconds, this.retry.giveUpAfterMs);
      // Wait for every delivery even when one fails to record its outcome: stop() waits for this round,
      // and the pool closes after it. A row whose outcome was not written comes due when its claim ends.
      const outcomes = await Promise.allSettled(due.map((n) => this.deliver(n)));
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === 'rejected') {
          this.opts.logger.error(
            { delivery: due[i]?.id, error: (outcome.reason as Error).message },
            'webhook delivery not recorded',
          );
        }
      }
      if (due.length < this.batchSize || this.stopped) return;
    }
  }

  private async housekeeping(step: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.opts.logger.warn({ step, error: (err as Error).message }, 'webhook housekeeping failed');
    }
  }

  /** Once an hour (tried again an hour after a failure too), a batch at a time. */
  private async prune(): Promise<void> {
    if (Date.now() < this.nextPruneAt) return;
    this.nextPruneAt = Date.now() + PRUNE_INTERVAL_MS;
    let deleted = 0;
    for (;;) {
      const batch = await this.store.deleteFinished(
        this.opts.retentionMs,
        this.retry.giveUpAfterMs,
        HOUSEKEEPING_BATCH,
      );
      deleted += batch;
      if (batch < HOUSEKEEPING_BATCH || this.stopped) break;
    }
    if (deleted > 0) this.opts.logger.info({ deleted }, 'finished notifications deleted');
  }

  /** One batch a round: a day's backlog is given up over a few rounds, not in one long statement. */
  private async giveUpExpired(): Promise<void> {
    for (const n of await this.store.giveUpExpired(this.retry.giveUpAfterMs, HOUSEKEEPING_BATCH)) {
      this.opts.logger.error(
        { delivery: n.id, type: n.type, attempts: n.attempts, error: n.lastError },
        'webhook given up',
      );
    }
  }

  private async deliver(n: ClaimedNotification): Promise<void> {
    const request = webhookRequest(n, this.opts.secret);
    // The URLs at once: one that never answers holds back none of the others.
    const tries = await Promise.allSettled(
      this.targets
        .filter((target) => !n.deliveredTo.includes(target.key))
        .map(async (target): Promise<WebhookRefusal | undefined> => {
          const heldOffMs = this.silent.heldOffMs(target.key);
          if (heldOffMs !== undefined) {
            return {
              error: `${target.label}: not tried, it did not answer within ${this.timeoutMs} ms lately`,
              retryAfterMs: heldOffMs,
            };
          }
          const refusal = await postWebhook(target, request, this.timeoutMs);
          if (this.silent.tried(target.key, !refusal?.timedOut)) {
            this.opts.logger.warn(
              { url: target.label, holdOffMs: this.silent.holdOffMs },
              'webhook URL held off: no answer in time',
            );
          }
          // Recorded as soon as it is accepted: a round cut short does not send it here again.
          if (refusal === undefined) await this.store.markDeliveredTo(n.id, target.key);
          return refusal && { ...refusal, error: `${target.label}: ${refusal.error}` };
        }),
    );
    const unrecorded = tries.find((t) => t.status === 'rejected');
    if (unrecorded) throw unrecorded.reason;
    const refusals = tries.flatMap((t) => (t.status === 'fulfilled' && t.value ? [t.value] : []));
    const errors = refusals.map((r) => r.error);
    const asked = Math.max(0, ...refusals.map((r) => r.retryAfterMs ?? 0));
    const attempt = n.attempts + 1;
    if (errors.length === 0) {
      await this.store.markDelivered(n.id);
      this.opts.logger.info({ delivery: n.id, type: n.type, attempt }, 'webhook delivered');
      return;
    }
    const error = errors.join('; ');
    const delayMs = nextDelayMs(attempt, asked, this.retry);
    const outcome = await this.store.markFailed(n, error, delayMs, this.retry.giveUpAfterMs);
    if (outcome === 'retrying') {
      this.opts.logger.warn(
        { delivery: n.id, type: n.type, attempt, error, retryInMs: delayMs },
        'webhook not accepted',
      );
    } else if (outcome === 'given-up') {
      this.opts.logger.error({ delivery: n.id, type: n.type, attempt, error }, 'webhook given up');
    } else {
      // The round outlasted its claim (its process paused longer than the claim): another dispatcher
      // has the row.
      this.opts.logger.warn({ delivery: n.id, type: n.type, attempt, error }, 'webhook round outlasted its claim');
    }
  }
}
