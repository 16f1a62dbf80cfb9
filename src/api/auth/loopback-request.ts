import { isLoopbackHost } from '../../config/api-access';

/** An IPv4-mapped IPv6 address as the URL parser writes it: `[::ffff:7f00:1]` for 127.0.0.1. */
const MAPPED_V4_HEX = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/;

/**
 * Whether a URL's host name names this machine: a loopback address, `localhost` or a name under it
 * (browsers resolve `*.localhost` to loopback themselves), with or without the root's trailing dot.
 */
function namesThisMachine(hostname: string): boolean {
  const name = hostname.replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const mapped = MAPPED_V4_HEX.exec(name);
  if (mapped) {
    const [high, low] = [parseInt(mapped[1] as string, 16), parseInt(mapped[2] as string, 16)];
    return isLoopbackHost(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  return isLoopbackHost(name);
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
