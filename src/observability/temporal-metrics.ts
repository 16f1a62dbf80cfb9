import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { freePort } from '../net/free-port';

export interface TemporalMetrics {
  /** The SDK's metrics as Prometheus text ('' when its exporter does not answer). */
  scrape: () => Promise<string>;
}

const SCRAPE_TIMEOUT_MS = 2000;

/** Ports tried for the exporter before the worker gives up starting. */
const EXPORTER_PORT_TRIES = 5;

/** The SDK's error when its exporter could not bind its port. */
const EXPORTER_BIND_FAILED = /prometheus metrics exporter/i;

/**
 * Installs the Temporal SDK's runtime (once per process, before any connection) with its own metrics
 * (poll and task latencies, slots, sticky cache, …) exported. The SDK's native core can only export
 * them on an HTTP listener of its own, so it listens on a private loopback port and the worker's single
 * `/metrics` endpoint forwards that text after Atelier's metrics: one port to scrape per process, and
 * the SDK's port never leaves the machine. A port taken between its choice and the exporter's bind
 * (another program's listener) is not fatal: the next one is tried.
 */
export async function installTemporalRuntime(
  options: Omit<RuntimeOptions, 'telemetryOptions'>,
  choosePort: () => Promise<number> = freePort,
): Promise<TemporalMetrics> {
  for (let tries = 1; ; tries++) {
    const port = await choosePort();
    try {
      Runtime.install({
        ...options,
        telemetryOptions: {
          metrics: {
            metricPrefix: 'temporal_',
            prometheus: { bindAddress: `127.0.0.1:${port}`, useSecondsForDurations: true, countersTotalSuffix: true },
          },
        },
      });
      return { scrape: () => scrape(port) };
    } catch (err) {
      if (tries >= EXPORTER_PORT_TRIES || !EXPORTER_BIND_FAILED.test((err as Error).message)) throw err;
    }
  }
}

async function scrape(port: number): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}
