import { z } from 'zod';
import { DEFAULT_TASK_QUEUES } from '../../workflows/definitions';

/** The API's port: 0 would listen on a random one, which nothing could find. */
const port = z.coerce.number().int().min(1).max(65_535);
const optionalText = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

/** Whether `v` parses as a postgres:// or postgresql:// URL (a bad one would fail later, deep in pg). */
function isPostgresUrl(v: string): boolean {
  try {
    const { protocol } = new URL(v);
    return protocol === 'postgres:' || protocol === 'postgresql:';
  } catch {
    return false;
  }
}

/** A fixed number of agent slots, or `auto`: Temporal's resource-based tuner sizes them by CPU and memory. */
const agentSlots = z.union([z.number(), z.string()]).transform((v, ctx): number | 'auto' => {
  if (typeof v === 'string' && v.trim().toLowerCase() === 'auto') return 'auto';
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    ctx.addIssue({ code: 'custom', message: 'must be an integer number >=1 and <=1000, or auto' });
    return z.NEVER;
  }
  return n;
});
/** A share of the machine, above 0 and at most 1. */
const fraction = z.coerce.number().gt(0).max(1);
/** A worker's metrics port: 0 picks a free port (the worker registers the one it got), `off` serves none. */
const metricsPort = z.union([z.number(), z.string()]).transform((v, ctx): number | 'off' => {
  if (typeof v === 'string' && v.trim().toLowerCase() === 'off') return 'off';
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    ctx.addIssue({ code: 'custom', message: 'must be a port number from 0 to 65535, or off' });
    return z.NEVER;
  }
  return n;
});

/** Comma-separated http(s) URLs; blank or unset: none. */
const webhookUrls = optionalText.transform((v, ctx): string[] => {
  const urls = (v ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  for (const [i, u] of urls.entries()) {
    let protocol = '';
    try {
      protocol = new URL(u).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      // The URL itself may carry a token: name its position, not its text.
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not an http(s) URL` });
      return z.NEVER;
    }
  }
  // The same URL twice would be sent every event twice.
  return [...new Set(urls)];
});

/**
 * Comma-separated bearer tokens; blank or unset: none. Set, it must name at least one token, and a
 * token is printable ASCII without whitespace (`Authorization: Bearer <token>` carries nothing else as
 * written: Node reads a header's other bytes as Latin-1, so such a token would never match), nor a
 * `change-me` placeholder of the shipped manifests. Empty entries between commas are dropped. Errors
 * name an entry's position, never its text.
 */
const apiTokens = optionalText.transform((v, ctx): string[] => {
  if (v === undefined) return [];
  const entries = v.split(',').map((t) => t.trim());
  const spaced = entries.findIndex((t) => /\s/.test(t));
  if (spaced >= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `entry ${spaced + 1} contains whitespace, which no bearer token can hold`,
    });
    return z.NEVER;
  }
  const unreadable = entries.findIndex((t) => !/^[\x21-\x7e]*$/.test(t));
  if (unreadable >= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `entry ${unreadable + 1} holds a character that is not printable ASCII, which no bearer token header carries as written`,
    });
    return z.NEVER;
  }
  const placeholder = entries.findIndex((t) => t.toLowerCase().startsWith('change-me'));
  if (placeholder >= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `entry ${placeholder + 1} is a change-me placeholder: replace it with a secret of your own`,
    });
    return z.NEVER;
  }
  const tokens = entries.filter((t) => t.length > 0);
  if (tokens.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'is set but names no token (only commas and spaces)' });
    return z.NEVER;
  }
  return tokens;
});

/** Every setting Atelier reads from the environment, with its default. */
const envSchema = z.object({
  PORT: port.default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .default('postgresql://postgres@127.0.0.1:5432/atelier')
    .refine(isPostgresUrl, 'must be a postgresql:// URL, such as postgresql://user:password@host:5432/atelier'),
  TEMPORAL_ADDRESS: z
    .string()
    .default('127.0.0.1:7233')
    .refine((v) => /^[^\s:]+:\d+$/.test(v), 'must be host:port'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** `true` for TLS with the system's roots; implied by any of the files below or an API key. */
  TEMPORAL_TLS: z.enum(['true', 'false']).default('false'),
  TEMPORAL_TLS_CA_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  /** Temporal Cloud API key; sent over TLS, never logged. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  /** Links are built by appending paths: a trailing slash would double theirs (`…//namespaces/…`). */
  TEMPORAL_UI_URL: z
    .string()
    .url()
    .transform((v) => v.replace(/\/+$/, ''))
    .default('http://127.0.0.1:8233'),
  ATELIER_AGENTS_FILE: z.string().min(1).default('config/agents.yaml'),
  ATELIER_AGENT_SLOTS: agentSlots.default(4),
  ATELIER_AGENT_MAX_SLOTS: z.coerce.number().int().min(1).max(1000).default(50),
  /**
   * How agent workers start agents: the path of the `atelier-spawner` helper (infra/spawner), or
   * `direct` (Node's child_process, through setpriv). Unset: the helper the project builds in
   * .tools/bin when it is there, else direct.
   */
  ATELIER_AGENT_SPAWNER: z
    .string()
    .trim()
    .refine((v) => v === 'direct' || v.startsWith('/'), 'must be an absolute path or direct')
    .optional(),
  ATELIER_AGENT_TARGET_CPU: fraction.default(0.8),
  ATELIER_AGENT_TARGET_MEMORY: fraction.default(0.8),
  ATELIER_WORKFLOW_WORKER_METRICS_PORT: metricsPort.default(9464),
  ATELIER_AGENT_WORKER_METRICS_PORT: metricsPort.default(9465),
  ATELIER_API_TOKENS: apiTokens,
  /** `none`: serve `/v1` without a token even on a non-loopback HOST (behind a proxy that authenticates). */
  ATELIER_API_AUTH: z.enum(['none']).optional(),
  ATELIER_WORKFLOW_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUES.workflows),
  ATELIER_AGENT_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUES.agents),
  /** Where an agent worker makes the git worktrees of tasks with a repository; default <tmpdir>/atelier-worktrees. */
  ATELIER_WORKTREE_ROOT: z.string().regex(/^\//, 'must be an absolute path').optional(),
  ATELIER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(30),
  ATELIER_RETRY_BACKOFF_SECONDS: z.coerce.number().min(0).max(3600).default(1),
  /** How often a task held back by a breaker, a limit or a budget asks again (it grows to 5 minutes while it waits, to an hour after a day). */
  ATELIER_WAIT_RECHECK_SECONDS: z.coerce.number().min(0.05).max(3600).default(5),
  /**
   * How long a running attempt's slot stays taken without renewal (a dead agent worker frees it after
   * this). Renewed at heartbeats, every few seconds: a shorter lease could lapse while its agent runs.
   */
  ATELIER_LEASE_SECONDS: z.coerce.number().min(10).max(3600).default(30),
  /**
   * API: how old a task or plan stored without its workflow (its API stopped before starting it) must be
   * before the API starts it. Longer than any submission takes, so the submitting request has answered.
   */
  ATELIER_STRANDED_AFTER_SECONDS: z.coerce.number().min(1).max(86_400).default(120),
  /**
   * API: the most bytes of JSON a repository's lock table (its lock manager's holders and waiters) may
   * hold; a task with locks that would take it past this is refused with 429. The manager carries the
   * table over `continueAsNew` as one payload, which Temporal limits to 2 MB, with the releases it
   * remembers (at most 2,000, some 190 KB): the largest limit leaves room for those, and for tasks the
   * API does not count (a retry, a plan's when it starts).
   */
  ATELIER_LOCK_TABLE_MAX_BYTES: z.coerce.number().int().min(10_000).max(1_500_000).default(1_000_000),
  /**
   * API: how often it asks Temporal for task and plan workflows that closed without recording their
   * end (terminated in the Web UI or CLI, timed out), and records them failed.
   */
  ATELIER_CLOSED_RUN_SWEEP_SECONDS: z.coerce.number().min(1).max(3600).default(10),
  /**
   * API: the most clients following task logs (`?follow=1`) at once on this replica; each re-reads the
   * database when it wakes, on the API's pool. One more is refused with 503 and `Retry-After`.
   */
  ATELIER_LOG_FOLLOWERS_MAX: z.coerce.number().int().min(1).max(100_000).default(1000),
  /**
   * API: the most plain task logs (`GET /v1/tasks/:id/logs` without follow) being sent at once on this
   * replica; each holds a page of the log until its client has read it. One more is refused with 503.
   */
  ATELIER_LOG_DOWNLOADS_MAX: z.coerce.number().int().min(1).max(100_000).default(100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where notifications go (task failed, breaker opened, budget reached); none: notifications off. */
  ATELIER_WEBHOOK_URLS: webhookUrls,
  /** The HMAC key of `X-Atelier-Signature`; required with ATELIER_WEBHOOK_URLS. Never logged. */
  ATELIER_WEBHOOK_SECRET: optionalText,
  /**
   * How long finished notifications are kept: delivered ones counted from the event, given-up ones from
   * the give-up (NotificationStore.deleteFinished). At least a day:
   * deleting a row frees its dedupe key, which must outlast any repeat of the event (a retried activity).
   */
  ATELIER_WEBHOOK_RETENTION_DAYS: z.coerce.number().min(1).max(3650).default(7),
});

export type AtelierConfig = z.infer<typeof envSchema>;

export class ConfigError extends Error {}

/**
 * Validates `env` against `schema`; throws a ConfigError that names every bad variable. A variable set to
 * blank (`PORT=`, or compose's `${PORT}` when unset) means "use the default"; left in, number coercion
 * would read it as 0 and listen on a random port.
 */
function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads and validates the environment; throws a ConfigError that names every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AtelierConfig {
  return parseEnv(
    envSchema
      .refine((c) => c.ATELIER_WEBHOOK_URLS.length === 0 || c.ATELIER_WEBHOOK_SECRET !== undefined, {
        path: ['ATELIER_WEBHOOK_SECRET'],
        message: 'is required when ATELIER_WEBHOOK_URLS is set (the key webhook bodies are signed with)',
      })
      .refine((c) => c.ATELIER_API_AUTH !== 'none' || c.ATELIER_API_TOKENS.length === 0, {
        path: ['ATELIER_API_AUTH'],
        message: 'none contradicts ATELIER_API_TOKENS: unset one of them',
      }),
    env,
  );
}

/** How to reach Temporal besides its address: TLS and the API key. */
const temporalSecuritySchema = envSchema.pick({
  TEMPORAL_TLS: true,
  TEMPORAL_TLS_CA_FILE: true,
  TEMPORAL_TLS_CERT_FILE: true,
  TEMPORAL_TLS_KEY_FILE: true,
  TEMPORAL_TLS_SERVER_NAME: true,
  TEMPORAL_API_KEY: true,
});
export type TemporalSecurityConfig = z.infer<typeof temporalSecuritySchema>;

/**
 * The TLS and API key variables alone, validated as loadConfig does: for `atelier replay`, which talks
 * to Temporal as the service does but reads none of the service's other settings (its address is an option).
 */
export function loadTemporalSecurity(env: NodeJS.ProcessEnv): TemporalSecurityConfig {
  return parseEnv(temporalSecuritySchema, env);
}

/**
 * The database URL with any password masked, for start-up banners and logs: the user's, and those
 * the driver takes from the query string (`?password=`, `?sslpassword=`).
 */
export function describeDatabase(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/password/i.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}
