/** The events Atelier sends to webhooks (`type` in the body, `X-Atelier-Event` header). */
export const NOTIFICATION_TYPES = {
  taskFailed: 'task.failed',
  breakerOpened: 'breaker.opened',
  budgetReached: 'budget.reached',
} as const;

export type NotificationType = (typeof NOTIFICATION_TYPES)[keyof typeof NOTIFICATION_TYPES];

/** The JSON body of every webhook request (docs/api.md, "Webhooks"). */
export interface WebhookBody {
  /** The delivery id: the same on every retry of this event, so receivers can deduplicate. */
  id: string;
  type: NotificationType;
  /** When the event happened (ISO 8601, database time). */
  occurredAt: string;
  data: Record<string, unknown>;
}
