import { unescape } from 'node:querystring';
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
 * The URL to request and the header its `user:password@` becomes: fetch refuses URLs with credentials,
 * so they go as `Authorization: Basic`, the way curl and browsers send them.
 */
function splitCredentials(url: string): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return { url, headers: {} };
  // Percent-decoded as curl does, a malformed escape kept as it is.
  const credentials = Buffer.from(`${unescape(u.username)}:${unescape(u.password)}`, 'utf8').toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.href, headers: { authorization: `Basic ${credentials}` } };
}

/** Why a request failed, for logs and `last_error`: fetch's messages may quote the URL, password and all. */
function failureReason(err: Error & { cause?: { code?: string } }, url: string): string {
  if (err.cause?.code) return err.cause.code;
  const { href, username, password, search } = new URL(url);
  const message = err.message.replaceAll(url, describeUrl(url)).replaceAll(href, describeUrl(url));
  // Quoted some other way (a user name may be a token too): keep the kind of error rather than its text.
  const secrets = [username, password, search].filter((part) => part !== '');
  return secrets.some((secret) => message.includes(secret)) ? err.name : message;
}

/**
 * POSTs the request to `url`. Resolves to undefined on a 2xx answer, else to why not (status or
 * network error, without the URL's secrets). Redirects are not followed: a signed body goes only where
 * it was configured to go.
 */
export async function postWebhook(
  url: string,
  request: WebhookRequest,
  timeoutMs: number,
): Promise<string | undefined> {
  try {
    const target = splitCredentials(url);
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { ...request.headers, ...target.headers },
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
    return failureReason(e, url);
  }
}
