import { isLoopbackHost } from '../config/api-access';

/**
 * Whether a URL's host name names this machine: a loopback address, `localhost` or a name under it
 * (browsers resolve `*.localhost` to loopback themselves), with or without the root's trailing dot.
 */
function namesThisMachine(hostname: string): boolean {
  const name = hostname.replace(/\.$/, '');
  return name.endsWith('.localhost') || isLoopbackHost(name);
}

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
  if (host !== undefined && !namesThisMachine(hostnameOf(host, 'http://') ?? '')) return 'Host';
  if (origin !== undefined && !namesThisMachine(hostnameOf(origin, '') ?? '')) return 'Origin';
  return undefined;
}
