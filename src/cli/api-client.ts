import { UsageError } from './commands/action';

/** An answer of the API other than 2xx, with its JSON error body when it had one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly method: string,
    readonly path: string,
    readonly body: unknown,
    /** The answer's `Retry-After` (seconds), when it named one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /**
   * True when the server has no such route at all (an API older than this client), as opposed to a
   * route that answered 404 about a resource, like an unknown task.
   */
  get routeMissing(): boolean {
    return this.status === 404 && /^Cannot (GET|POST|PUT|PATCH|DELETE) /.test(this.message);
  }
}

/** Connection failures that come before a request is sent: nothing reached the API. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);
/** Those, and TLS failures (a certificate refused): the connection never carried the request. */
const notSent = (code: string): boolean => NOT_SENT.has(code) || /^(ERR_TLS_|CERT_)/.test(code);

/** The API could not be reached, or the connection failed before its answer. */
export class ConnectionError extends Error {
  /** `answeredBefore`: the API answered an earlier request of this run, so its address is right. */
  constructor(baseUrl: string, cause: unknown, method: string, answeredBefore: boolean) {
    const reason = (cause as { cause?: { code?: string; message?: string } })?.cause;
    const code = reason?.code;
    // A change whose connection broke after it was sent may have been made: trying it blindly again may
    // make it twice (a task without an idempotency key).
    const mayHaveArrived = method !== 'GET' && (code === undefined || !notSent(code));
    super(
      `cannot reach the Atelier API at ${baseUrl}: ${code ?? reason?.message ?? (cause as Error).message} ` +
        (mayHaveArrived
          ? '(the request may have reached it: look before trying again, with atelier list or atelier status)'
          : answeredBefore
            ? '(it answered before and has gone away, a restart perhaps; tasks go on without it)'
            : '(set ATELIER_URL or --url)'),
    );
    this.name = 'ConnectionError';
  }
}

/** What the API's guard accepts after `Bearer ` (one word), in the characters an HTTP header carries as they are. */
const BEARER_TOKEN = /^[\x21-\x7e]+$/;

/** `application/json`, `application/problem+json` and the like, with or without parameters. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

/** How long the CLI waits on the API. */
export interface ApiTiming {
  /**
   * How long a request may wait for its answer to begin (its status and headers; a body as long as a
   * whole log may take longer): a retry or reset may take the API 30 s (its deadline for Temporal).
   * Past it the API counts as unreachable.
   */
  answerMs: number;
  /**
   * A stream silent this long is taken for a connection dropped without a word (`logs -f` then follows
   * anew after its last event): the API sends a keep-alive every 15 s.
   */
  streamIdleMs: number;
}

export const API_TIMING: ApiTiming = { answerMs: 60_000, streamIdleMs: 45_000 };

/** How long a line of a non-JSON error body may be. */
const MAX_LINE = 120;

interface ErrorBody {
  message?: unknown;
}

/** One short line of a body that is not JSON (a proxy's HTML error page, say): its title, or its text. */
function oneLine(text: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1];
  const line = (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
}

/** An answer's `Retry-After`, when it names a number of seconds. */
export function retryAfterSeconds(res: Response): number | undefined {
  const seconds = Number(res.headers.get('retry-after') ?? Number.NaN);
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** Whether a URL names a user or a password (`https://user:pass@host`). */
function holdsCredentials(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { username, password } = new URL(url);
  return username !== '' || password !== '';
}

/** A small client of the Atelier REST API: JSON in and out, bearer token, errors as exceptions. */
export class ApiClient {
  readonly baseUrl: string;
  /** Some request of this run got an answer: a connection that fails later is no wrong address. */
  private answered = false;

  constructor(
    baseUrl: string,
    private readonly token?: string,
    readonly timing: ApiTiming = API_TIMING,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** The raw response (for streams and text); network failures become a ConnectionError. */
  async raw(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    // fetch refuses such a URL, and every message would echo it: say what is wrong, not the password.
    if (holdsCredentials(this.baseUrl)) {
      throw new UsageError(
        'the API URL (--url or ATELIER_URL) must not hold a user name or password: give a token with --token or ATELIER_TOKEN',
      );
    }
    // Not echoed: a value that is no URL may be a secret, set in the wrong variable (ATELIER_URL=<token>).
    if (!/^https?:\/\/./i.test(this.baseUrl) || !URL.canParse(this.baseUrl)) {
      throw new UsageError('the API URL (--url or ATELIER_URL) is not an http(s) URL');
    }
    if (this.token) {
      // fetch would quote a token it refuses as a header value in its error: say what is wrong, not the token.
      if (!BEARER_TOKEN.test(this.token)) {
        throw new UsageError(
          'the API token (--token or ATELIER_TOKEN) must be visible ASCII characters only, without spaces or line breaks',
        );
      }
      headers.authorization = `Bearer ${this.token}`;
    }
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    }
    let res: Response;
    // Until the answer begins: a body (a whole log, a stream) is not cut short by it.
    const unanswered = new AbortController();
    const { answerMs } = this.timing;
    const timer = setTimeout(
      () => unanswered.abort(new DOMException(`no answer within ${answerMs / 1000} s`, 'TimeoutError')),
      answerMs,
    );
    try {
      // Redirects are not followed: one would turn a POST into a GET (a submission answered with the
      // task list) and, to another origin, drop the token.
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body,
        signal: init.signal ? AbortSignal.any([init.signal, unanswered.signal]) : unanswered.signal,
        redirect: 'manual',
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ConnectionError(this.baseUrl, err, method, this.answered);
    } finally {
      clearTimeout(timer);
    }
    this.answered = true;
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      throw new Error(
        `${method} ${path} answered ${res.status}, a redirect to ${res.headers.get('location') ?? 'nowhere'}: ` +
          `${this.baseUrl} is not the API's address (set ATELIER_URL or --url to the one it redirects to)`,
      );
    }
    return res;
  }

  /** The answer's body; a connection that breaks while it is read is a ConnectionError. */
  private async bodyOf(method: string, res: Response): Promise<string> {
    try {
      return await res.text();
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ConnectionError(this.baseUrl, err, method, this.answered);
    }
  }

  /** Throws an ApiError unless the response is 2xx. */
  async check(method: string, path: string, res: Response): Promise<Response> {
    if (res.ok) return res;
    const text = await this.bodyOf(method, res);
    let body: unknown = text;
    let message = oneLine(text) || res.statusText;
    try {
      body = JSON.parse(text);
      const m = (body as ErrorBody | null)?.message;
      if (typeof m === 'string') message = m;
      else if (Array.isArray(m)) message = m.join('; ');
    } catch {
      // not JSON: one line of the text is enough
    }
    throw new ApiError(res.status, message, method, path, body, retryAfterSeconds(res));
  }

  /** A JSON request; a 2xx answer that is not JSON means that the URL is not an Atelier API. */
  async json<T>(method: string, path: string, init: { body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.check(method, path, await this.raw(method, path, init));
    const text = await this.bodyOf(method, res);
    if (text === '') return undefined as T;
    const type = res.headers.get('content-type') ?? '';
    if (!JSON_TYPE.test(type)) {
      throw new Error(
        `${this.baseUrl} is not an Atelier API: ${method} ${path} answered ${res.status} with ` +
          `${type === '' ? 'no content type' : type}, not JSON (set ATELIER_URL or --url)`,
      );
    }
    return JSON.parse(text) as T;
  }

  async text(path: string): Promise<string> {
    const res = await this.check('GET', path, await this.raw('GET', path));
    return this.bodyOf('GET', res);
  }
}
