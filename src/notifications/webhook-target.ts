import { createHmac } from 'node:crypto';

/** A configured webhook URL and the two names it goes by outside its own requests. */
export interface WebhookTarget {
  url: string;
  /** For logs and `last_error`: `webhook 2 (hooks.example.com)`. */
  label: string;
  /** What `notifications.delivered_to` records once this URL has accepted an event. */
  key: string;
}

/**
 * The configured URLs as targets. A URL's path and query are often its secret (a receiver or relay
 * that takes a token in its path, `/hooks/<token>`) and its user and password are credentials, so a
 * label keeps only the URL's 1-based position in the list and its host (and port).
 * The key is an HMAC of the URL under the signing secret, not a plain hash: anyone who reads the table
 * could test guesses of a weak password against a plain hash.
 */
export function webhookTargets(urls: string[], secret: string): WebhookTarget[] {
  return urls.map((url, i) => ({
    url,
    label: `webhook ${i + 1} (${new URL(url).host})`,
    key: createHmac('sha256', secret).update(url, 'utf8').digest('hex'),
  }));
}
