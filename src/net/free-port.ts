import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port tried. */
const LOWEST = 10_000;

/**
 * The first port of the kernel's ephemeral range, which it hands out for `listen(0)` and outgoing
 * connections. A port taken from that range could go to another listener on port 0, or to any
 * outgoing connection on the machine, between our asking and our listening.
 */
function ephemeralRangeStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(start) && start > LOWEST) return start;
  } catch {
    // Not Linux: its default range.
  }
  return 32_768;
}

/** Whether a listener could take `port` on `host` now. */
export function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback TCP port free at the time of asking, below the ephemeral range so that nothing takes it by
 * chance: for a listener that must be told its port in advance (the Temporal SDK's metrics exporter, the
 * test stacks' services). Only a program that binds that very port can still take it first.
 */
export async function freePort(): Promise<number> {
  const end = ephemeralRangeStart();
  for (let tries = 0; tries < 100; tries++) {
    const port = LOWEST + Math.floor(Math.random() * (end - LOWEST));
    if (await canListen('127.0.0.1', port)) return port;
  }
  throw new Error(`no free port found between ${LOWEST} and ${end - 1}`);
}
