import { isIPv4 } from 'node:net';
import { ConfigError, type AtelierConfig } from './env';

/** The IPv4 address of an IPv4-mapped IPv6 address's tail, written `127.0.0.1` or, as URLs write it, `7f00:1`. */
function mappedV4(tail: string): string {
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(tail);
  if (!hex) return tail;
  const [high, low] = [parseInt(hex[1] as string, 16), parseInt(hex[2] as string, 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** Whether `host` is an address only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? mappedV4(h.slice('::ffff:'.length)) : h;
  return isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Refuses an API that would serve `/v1` to other machines without a token: a non-loopback HOST needs
 * ATELIER_API_TOKENS, or ATELIER_API_AUTH=none to say that something in front authenticates.
 */
export function assertApiAccess(config: AtelierConfig): void {
  if (config.ATELIER_API_TOKENS.length > 0 || config.ATELIER_API_AUTH === 'none') return;
  if (isLoopbackHost(config.HOST)) return;
  throw new ConfigError(
    `invalid environment:\n  ATELIER_API_TOKENS: is required when HOST (${config.HOST}) is not a loopback address: ` +
      'without a token anyone who reaches the port can submit and cancel tasks. Set ATELIER_API_TOKENS, ' +
      'or ATELIER_API_AUTH=none if a proxy in front authenticates.',
  );
}

/** Whether the API serves `/v1` without credentials, counting on its loopback address alone. */
export function isOpenOnLoopback(config: AtelierConfig): boolean {
  return config.ATELIER_API_TOKENS.length === 0 && config.ATELIER_API_AUTH !== 'none';
}
