import { isLoopbackHost } from '../../config/api-access';

/** The host name of a `Host` header value or an origin (`127.0.0.1:3000`, `http://[::1]:3000`), if it parses. */
function hostnameOf(value: string, prefix: string): string | undefined {
  try {
    return new URL(`${prefix}${value}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Which header of a request, if any, says it was not made to this machine by this machine: a `Host`
 * that names no loopback address (a page whose own domain was re-pointed at 127.0.0.1, DNS rebinding),
 * or an `Origin` that is not a loopback one (any other site's page, whose simple requests need no CORS
 * preflight; `null` from a sandboxed page or a file). A request without them (a client outside a
 * browser, HTTP/1.0) passes.
 */
export function foreignHeader(headers: { host?: string; origin?: string }): 'Host' | 'Origin' | undefined {
  const { host, origin } = headers;
  if (host !== undefined && !isLoopbackHost(hostnameOf(host, 'http://') ?? '')) return 'Host';
  if (origin !== undefined && !isLoopbackHost(hostnameOf(origin, '') ?? '')) return 'Origin';
  return undefined;
}
