import type { Secret } from './secret-redactor';

/** Shorter parts (a development database's `postgres`) are too common in ordinary output to mask. */
const MIN_PART_LENGTH = 12;
const MIN_LENGTH = 8;

/**
 * The service's own secrets in the agent worker's environment: the database URL and its password, the
 * Temporal API key, the API's tokens, the webhooks' URLs (Slack's and Discord's carry their token) and
 * key. An agent is never given them (its environment is its profile's), but it runs as the worker's
 * user and could still read them (from `/proc`), so they are masked in every agent's output too: none
 * reaches a log, a record or a history.
 */
export function serviceSecretsIn(env: NodeJS.ProcessEnv): Secret[] {
  const secrets: Secret[] = [];
  const add = (name: string, value: string | undefined, min = MIN_LENGTH) => {
    if (value !== undefined && value.length >= min) secrets.push({ name, value });
  };
  const list = (value: string | undefined) => (value ?? '').split(',').map((part) => part.trim());
  add('DATABASE_URL', env.DATABASE_URL);
  add('DATABASE_URL', urlPassword(env.DATABASE_URL), MIN_PART_LENGTH);
  add('PGPASSWORD', env.PGPASSWORD, MIN_PART_LENGTH);
  add('TEMPORAL_API_KEY', env.TEMPORAL_API_KEY);
  add('ATELIER_WEBHOOK_SECRET', env.ATELIER_WEBHOOK_SECRET);
  for (const token of list(env.ATELIER_API_TOKENS)) add('ATELIER_API_TOKENS', token);
  for (const url of list(env.ATELIER_WEBHOOK_URLS)) {
    add('ATELIER_WEBHOOK_URLS', url);
    add('ATELIER_WEBHOOK_URLS', urlPassword(url), MIN_PART_LENGTH);
  }
  return secrets;
}

/** The password of a URL, decoded, if it has one. */
function urlPassword(url: string | undefined): string | undefined {
  if (url === undefined || !URL.canParse(url)) return undefined;
  const { password } = new URL(url);
  if (password === '') return undefined;
  try {
    return decodeURIComponent(password);
  } catch {
    return password;
  }
}
