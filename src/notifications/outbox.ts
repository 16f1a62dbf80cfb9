import { randomUUID } from 'node:crypto';
import type { NotificationType } from './notification-types';

/** A pool or a client inside a transaction: enqueue where the state change is written. */
export interface Queryable {
  query: (text: string, values?: unknown[]) => Promise<unknown>;
}

export interface OutboxEvent {
  type: NotificationType;
  /** What makes two events the same one (`task.failed:<task id>:<run>`): a repeat is dropped. */
  dedupeKey: string;
  data: Record<string, unknown>;
}

/**
 * Writes the event to the `notifications` outbox, at most once per dedupe key (`ON CONFLICT DO
 * NOTHING`), so retried activities and repeated admission checks enqueue it once. Call it with the
 * transaction that makes the change it reports: the event exists exactly when the change does.
 */
export async function enqueueNotification(db: Queryable, event: OutboxEvent): Promise<void> {
  await db.query(
    `INSERT INTO notifications (id, type, dedupe_key, payload) VALUES ($1, $2, $3, $4)
     ON CONFLICT (dedupe_key) DO NOTHING`,
    [randomUUID(), event.type, event.dedupeKey, event.data],
  );
}
