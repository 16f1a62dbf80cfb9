import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { boundedQuery, STATEMENT_TIMEOUT_MS } from '../db/bounded-query';
import { retryTransient } from '../db/transient';
import type { NotificationType } from './notification-types';

/** A notification a dispatcher has claimed for one round of delivery. */
export interface ClaimedNotification {
  id: string;
  type: NotificationType;
  data: Record<string, unknown>;
  createdAt: Date;
  /** Deliveries tried before this one. */
  attempts: number;
  /** The keys of the URLs that have accepted it already (WebhookTarget.key): not sent to again. */
  deliveredTo: string[];
  /**
   * The claim: the end it set (`next_attempt_at`, as the database's text, to the microsecond). A round's
   * failure is recorded only while the row still holds it, not over another dispatcher's later claim.
   */
  claim: string;
}

/** What markFailed did: scheduled the next round, gave the row up, or nothing (the claim is gone). */
export type FailedRound = 'retrying' | 'given-up' | 'claim-lost';

/** A notification given up when it came due: its event is older than the give-up window. */
export interface ExpiredNotification {
  id: string;
  type: NotificationType;
  attempts: number;
  lastError: string;
}

/** The outbox as metrics show it: what waits to be delivered, and what was given up. */
export interface OutboxStats {
  /** Events not yet accepted by every URL, still to be tried. */
  pending: number;
  /** Seconds since the oldest pending event happened; 0 when none is pending. */
  oldestPendingSeconds: number;
  /** Events given up (not delivered within 24 h), among those kept (ATELIER_WEBHOOK_RETENTION_DAYS). */
  givenUp: number;
}

/** The hourly deletion of finished rows: a larger statement, run once an hour, may take longer. */
const PRUNE_STATEMENT_TIMEOUT_MS = 30_000;

/**
 * The outbox as dispatchers see it. Claiming pushes a row's `next_attempt_at` past the time one round
 * of delivery may take, in the statement that selects it (`FOR UPDATE SKIP LOCKED`): any number of
 * dispatchers share the table without sending a row twice at once, no transaction stays open across
 * HTTP calls, and a row claimed by a dispatcher that died is due again once its claim runs out.
 * Delivery is recorded per URL, so a retry goes only to the URLs that have not accepted the event.
 * Times are the database's.
 */
export class NotificationStore {
  constructor(private readonly pool: Pool) {}

  /** A statement of a delivery round: bounded (STATEMENT_TIMEOUT_MS), retried while the database is away. */
  private roundStatement<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<QueryResult<R>> {
    return retryTransient(() => this.pool.query<R>(boundedQuery(STATEMENT_TIMEOUT_MS, text, values)));
  }

  /**
   * Claims up to `limit` due rows whose event is at most `giveUpAfterMs` old (giveUpExpired ends the
   * older ones) for `claimSeconds`. Retried through a lost connection like every call here: a claim whose
   * answer was lost only delays its rows until it runs out.
   */
  async claimDue(limit: number, claimSeconds: number, giveUpAfterMs: number): Promise<ClaimedNotification[]> {
    const res = await this.roundStatement<{
      id: string;
      type: NotificationType;
      payload: Record<string, unknown>;
      created_at: Date;
      attempts: number;
      delivered_to: string[];
      claim: string;
    }>(
      `UPDATE notifications n SET next_attempt_at = clock_timestamp() + make_interval(secs => $2)
       FROM (
         SELECT id FROM notifications
         WHERE next_attempt_at <= clock_timestamp() AND created_at >= clock_timestamp() - make_interval(secs => $3)
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
       ) due
       WHERE n.id = due.id
       RETURNING n.id, n.type, n.payload, n.created_at, n.attempts, n.delivered_to, n.next_attempt_at::text AS claim`,
      [limit, claimSeconds, giveUpAfterMs / 1000],
    );
    return res.rows.map((r) => ({
      id: r.id,
      type: r.type,
      data: r.payload,
      createdAt: r.created_at,
      attempts: r.attempts,
      deliveredTo: r.delivered_to,
      claim: r.claim,
    }));
  }

  /**
   * Gives up the due rows whose event is older than `giveUpAfterMs`: no next attempt, `last_error`
   * saying so after the error kept from the last round. markFailed gives up a row only after a round
   * that ended; this also ends a row whose rounds never end (one that crashes the process), which
   * would otherwise come due again each time its claim runs out. Up to `limit` rows a call, so a day's
   * backlog is given up in short statements. Returns the rows it gave up.
   */
  async giveUpExpired(giveUpAfterMs: number, limit: number): Promise<ExpiredNotification[]> {
    const hours = giveUpAfterMs / 3600_000;
    const res = await this.roundStatement<{ id: string; type: NotificationType; attempts: number; last_error: string }>(
      `UPDATE notifications n SET next_attempt_at = NULL, last_error = concat_ws('; ', n.last_error, $2::text)
       FROM (
         SELECT id FROM notifications
         WHERE next_attempt_at <= clock_timestamp() AND created_at < clock_timestamp() - make_interval(secs => $1)
         LIMIT $3 FOR UPDATE SKIP LOCKED
       ) expired
       WHERE n.id = expired.id
       RETURNING n.id, n.type, n.attempts, n.last_error`,
      [giveUpAfterMs / 1000, `not delivered within ${hours} h of the event`, limit],
    );
    return res.rows.map((r) => ({ id: r.id, type: r.type, attempts: r.attempts, lastError: r.last_error }));
  }

  /**
   * Records that the URL with this key accepted the notification, as soon as it did: a round cut short
   * (the process crashed) does not send it there again.
   */
  async markDeliveredTo(id: string, key: string): Promise<void> {
    await this.roundStatement(
      `UPDATE notifications SET delivered_to = array_append(delivered_to, $2)
       WHERE id = $1 AND NOT ($2 = ANY (delivered_to))`,
      [id, key],
    );
  }

  /** Marks the notification delivered: every configured URL has accepted it. */
  async markDelivered(id: string): Promise<void> {
    await this.roundStatement(
      `UPDATE notifications SET delivered_at = clock_timestamp(), next_attempt_at = NULL, attempts = attempts + 1,
         last_error = NULL, failed_claim = NULL
       WHERE id = $1 AND delivered_at IS NULL`,
      [id],
    );
  }

  /**
   * Records a round in which some URL did not accept the notification and schedules the next one
   * `delayMs` from now, or gives up (no next attempt, the error kept) when that would fall more than
   * `giveUpAfterMs` after the event. Only while the row holds this round's claim: once it ran out,
   * another dispatcher may have claimed the row (a round of its own under way) or delivered it, and this
   * round's outcome is left out.
   */
  async markFailed(
    n: Pick<ClaimedNotification, 'id' | 'claim'>,
    error: string,
    delayMs: number,
    giveUpAfterMs: number,
  ): Promise<FailedRound> {
    const res = await this.roundStatement<{ retry: boolean }>(
      `UPDATE notifications SET attempts = attempts + 1, last_error = $2, failed_claim = $5::timestamptz,
         next_attempt_at = CASE
           WHEN clock_timestamp() + make_interval(secs => $3) > created_at + make_interval(secs => $4) THEN NULL
           ELSE clock_timestamp() + make_interval(secs => $3)
         END
       WHERE id = $1 AND delivered_at IS NULL AND next_attempt_at = $5::timestamptz
       RETURNING next_attempt_at IS NOT NULL AS retry`,
      [n.id, error.slice(0, 2000), delayMs / 1000, giveUpAfterMs / 1000, n.claim],
    );
    const row = res.rows[0] ?? (await this.failedAlready(n));
    if (row === undefined) return 'claim-lost';
    return row.retry ? 'retrying' : 'given-up';
  }

  /**
   * A failure that matched no row may have been written by this very call, its answer lost and the
   * statement retried (its claim is gone then): the row, undelivered, records this round's claim as the
   * one that failed it. Not the error's text: another dispatcher's round may have failed with the same.
   */
  private async failedAlready(n: Pick<ClaimedNotification, 'id' | 'claim'>): Promise<{ retry: boolean } | undefined> {
    const res = await this.roundStatement<{ retry: boolean }>(
      `SELECT next_attempt_at IS NOT NULL AS retry FROM notifications
       WHERE id = $1 AND delivered_at IS NULL AND failed_claim = $2::timestamptz`,
      [n.id, n.claim],
    );
    return res.rows[0];
  }

  /**
   * Pending events through the `notifications_due` index; given-up ones over the kept rows. Fails when
   * PostgreSQL has not answered within `timeoutMs`.
   */
  async outboxStats(timeoutMs?: number): Promise<OutboxStats> {
    const res = await this.pool.query<{ pending: number; oldest: number | null; given_up: number }>(
      boundedQuery(
        timeoutMs,
        `SELECT
         (SELECT count(*)::int FROM notifications WHERE next_attempt_at IS NOT NULL) AS pending,
         (SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 FROM notifications
           WHERE next_attempt_at IS NOT NULL) AS oldest,
         (SELECT count(*)::int FROM notifications WHERE next_attempt_at IS NULL AND delivered_at IS NULL) AS given_up`,
      ),
    );
    const row = res.rows[0];
    return { pending: row?.pending ?? 0, oldestPendingSeconds: row?.oldest ?? 0, givenUp: row?.given_up ?? 0 };
  }

  /**
   * Deletes the rows whose delivery is over (delivered or given up: no next attempt) and kept for
   * `retentionMs`: counted from the event for a delivered row, from the end of the give-up window
   * (`giveUpAfterMs` after the event, when it was given up) for an undelivered one, so that a given-up
   * event can be sent again for the whole retention. Their dedupe keys go with them, which is safe once
   * no producer can repeat the event (keys name a task run, an opening time, a day). Up to `limit` rows
   * a call. Returns how many rows went.
   */
  async deleteFinished(retentionMs: number, giveUpAfterMs: number, limit: number): Promise<number> {
    const res = await retryTransient(() =>
      this.pool.query(
        // The bound for every row stays beside the later one for given-up rows: the rows are found in
        // their index (notifications_finished, on created_at), not by reading the table.
        boundedQuery(
          PRUNE_STATEMENT_TIMEOUT_MS,
          `DELETE FROM notifications WHERE id IN (
             SELECT id FROM notifications
             WHERE next_attempt_at IS NULL AND created_at < clock_timestamp() - make_interval(secs => $1)
               AND (delivered_at IS NOT NULL OR created_at < clock_timestamp() - make_interval(secs => $3))
             LIMIT $2 FOR UPDATE SKIP LOCKED
           )`,
          [retentionMs / 1000, limit, (retentionMs + giveUpAfterMs) / 1000],
        ),
      ),
    );
    return res.rowCount ?? 0;
  }
}
