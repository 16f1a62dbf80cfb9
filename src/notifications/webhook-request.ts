import { unescape } from 'node:querystring';
import { retryAfterMs } from './backoff';
import type { ClaimedNotification } from './notification-store';
import type { WebhookBody } from './notification-types';
import { signBody, signTimestamped } from './signing';
import type { WebhookTarget } from './webhook-target';

export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * The body and headers of one notification's delivery, sent at `nowMs`. The body comes from its stored
 * row, so every retry sends the same bytes under the same delivery id; only the timestamped signature
 * changes, with the time of the send.
 */
export function webhookRequest(n: ClaimedNotification, secret: string, nowMs = Date.now()): WebhookRequest {
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
      'x-atelier-timestamped-signature': signTimestamped(body, secret, Math.floor(nowMs / 1000)),
    },
  };
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

/** Whether `piece` stands in `text` as a word of its own: `in` in `/in/x`, not in `includes`. */
function standsIn(text: string, piece: string): boolean {
  const escaped = piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![A-Za-z0-9])${escaped}(?![A-Za-z0-9])`).test(text);
}

/**
 * Why a request failed, for logs and `last_error`: its cause's code, else fetch's message and its
 * cause's (`fetch failed: bad port`, for a port fetch refuses to ask). The messages may quote the URL:
 * each quote becomes the label. If a piece of the user, password, path, query or fragment still shows
 * (quoted some other way), only the kind of error is kept; a false alarm costs only the detail.
 */
function failureReason(err: Error & { cause?: { code?: string; message?: string } }, target: WebhookTarget): string {
  if (err.cause?.code) return err.cause.code;
  const u = new URL(target.url);
  const requested = splitCredentials(target.url).url;
  const quotes = [target.url, u.href, requested].sort((a, b) => b.length - a.length);
  let outside = [err.cause?.message ? `${err.message}: ${err.cause.message}` : err.message];
  for (const quote of quotes) outside = outside.flatMap((part) => part.split(quote));
  const pieces = [u.username, u.password, ...`${u.pathname}${u.search}${u.hash}`.split(/[/?#&=]/)]
    .filter((piece) => piece !== '')
    .flatMap((piece) => [piece, unescape(piece)]);
  const leaks = pieces.some((piece) => outside.some((part) => standsIn(part, piece)));
  return leaks ? err.name : outside.join(target.label);
}

/** Why a URL did not accept a delivery, and how long it asked to be left alone (`Retry-After`). */
export interface WebhookRefusal {
  error: string;
  retryAfterMs?: number;
  /** No answer within the timeout. */
  timedOut?: true;
}

/**
 * POSTs the request to the target's URL. Resolves to undefined on a 2xx answer, else to why not
 * (status or network error, without the URL's path, query or credentials). Redirects are not followed:
 * a signed body goes only where it was configured to go.
 */
export async function postWebhook(
  target: WebhookTarget,
  request: WebhookRequest,
  timeoutMs: number,
): Promise<WebhookRefusal | undefined> {
  try {
    const { url, headers } = splitCredentials(target.url);
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...request.headers, ...headers },
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Cancel the answer instead of reading it: its content does not matter, and a receiver that sends
    // a huge one must not fill the worker's memory. An answer with a body costs the connection's reuse.
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return undefined;
    const wait = retryAfterMs(res.headers.get('retry-after'));
    return { error: `HTTP ${res.status}`, ...(wait !== undefined && { retryAfterMs: wait }) };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') return { error: `no answer within ${timeoutMs} ms`, timedOut: true };
    return { error: failureReason(e, target) };
  }
}
