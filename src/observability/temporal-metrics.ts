import { createServer } from 'node:net';
import type { TelemetryOptions } from '@temporalio/worker';

/** A loopback port free at the time of asking, for the SDK's internal exporter. */
async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TemporalMetrics {
  /** For `Runtime.install({ telemetryOptions })`. */
  telemetryOptions: TelemetryOptions;
  /** The SDK's metrics as Prometheus text ('' when its exporter does not answer). */
  scrape: () => Promise<string>;
}

const SCRAPE_TIMEOUT_MS = 2000;

/**
 * The Temporal SDK's own metrics (poll and task latencies, slots, sticky cache, …). The SDK's native
 * core can only export them on an HTTP listener of its own, so it listens on a private loopback port
 * and the worker's single `/metrics` endpoint forwards that text after Atelier's metrics: one port to
 * scrape per process, and the SDK's port never leaves the machine.
 */
export async function temporalMetrics(): Promise<TemporalMetrics> {
  const port = await freeLoopbackPort();
  return {
    telemetryOptions: {
      metrics: {
        metricPrefix: 'temporal_',
        prometheus: { bindAddress: `127.0.0.1:${port}`, useSecondsForDurations: true, countersTotalSuffix: true },
      },
    },
    scrape: async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
        return res.ok ? await res.text() : '';
      } catch {
        return '';
      }
    },
  };
}
