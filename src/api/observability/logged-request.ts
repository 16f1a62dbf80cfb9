/**
 * The request headers a request's log line keeps. Any other header stays out: credentials come in many
 * (`Authorization`, `Proxy-Authorization`, the access tokens an authenticating proxy forwards, such as
 * `X-Forwarded-Access-Token`), and a list of what to hide would miss the next one.
 */
const LOGGED_HEADERS = [
  'host',
  'user-agent',
  'content-type',
  'content-length',
  'accept',
  'x-request-id',
  'x-forwarded-for',
  'last-event-id',
] as const;

interface SerializedRequest {
  headers?: Record<string, unknown>;
  [field: string]: unknown;
}

/** pino-http's `req` serializer: the request as pino-http describes it, with only `LOGGED_HEADERS`. */
export function loggedRequest(req: SerializedRequest): SerializedRequest {
  const headers = req.headers ?? {};
  return {
    ...req,
    headers: Object.fromEntries(LOGGED_HEADERS.filter((h) => headers[h] !== undefined).map((h) => [h, headers[h]])),
  };
}
