import type { ClaimedNotification } from './notification-store';
import type { WebhookBody } from './notification-types';
import { signBody } from './signing';

export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * The body and headers of one notification's delivery. Everything comes from its stored row, so every
 * retry sends the same bytes under the same delivery id.
 */
export function webhookRequest(n: ClaimedNotification, secret: string): WebhookRequest {
  const payload: WebhookBody = { id: n.id, type: n.type, occurredAt: n.createdAt.toISOString(), data: n.data };
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Atelier-Webhooks/1',
      'x-atelier-event': n.type,
      'x-atelier-delivery': n.id,
      'x-atelier-signature': signBody(body, secret),
    },
  };
}

/** A webhook URL fit for logs and `last_error`: no credentials, no query string (tokens live there). */
export function describeUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/**
 * POSTs the request to `url`. Resolves to undefined on a 2xx answer, else to why not (status or
 * network error). Redirects are not followed: a signed body goes only where it was configured to go.
 */
export async function postWebhook(
  url: string,
  request: WebhookRequest,
  timeoutMs: number,
): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Drain the answer so the connection can be reused; its content does not matter.
    await res.arrayBuffer().catch(() => undefined);
    return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
    return e.cause?.code ?? e.message;
  }
}
