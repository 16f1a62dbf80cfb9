import type { Pool } from 'pg';
import { cpuTicks, memoryMb, TICKS_PER_SECOND, type ProcessUsage } from './process-stats';
import { BENCH_APPLICATION_NAME } from './round-trips';

/** How often the service's backends are listed and read. */
const SAMPLE_INTERVAL_MS = 500;

interface Backend {
  pid: number;
  /** Its CPU ticks when the sampling started (0 for a backend started since), and at its last read. */
  baseTicks: number;
  lastTicks: number;
}

/**
 * The CPU and memory of the PostgreSQL backends that serve the service on its database (by
 * pg_stat_activity's pids, the benchmark's own connections left out), summed, from now until `stop()`.
 * Memory is the most private memory (RssAnon) they held together at one sample: their RSS counts the
 * shared buffers each has touched, the same pages again for every backend. A backend that opens and
 * closes between two samples is not seen; one that closes counts its CPU up to its last sample.
 */
export class PostgresBackendSampler {
  private readonly startedAt = new Date();
  private readonly backends = new Map<string, Backend>();
  private peakMb = 0;
  private sampling: Promise<void> = Promise.resolve();
  /** The first failed sample's error, thrown by `stop()` (a sample in the background has no one to throw to). */
  private failure: unknown;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pool: Pick<Pool, 'query'>) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
  }

  private sample(): void {
    this.sampling = this.sampling
      .then(async () => {
        const res = await this.pool.query<{ pid: number; backend_start: Date }>(
          `SELECT pid, backend_start FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> $1`,
          [BENCH_APPLICATION_NAME],
        );
        let privateMb = 0;
        for (const row of res.rows) {
          const ticks = cpuTicks(row.pid);
          if (ticks === undefined) continue; // gone meanwhile
          const key = `${row.pid}@${row.backend_start.toISOString()}`;
          const known = this.backends.get(key);
          if (known) known.lastTicks = ticks;
          else {
            const before = row.backend_start < this.startedAt;
            this.backends.set(key, { pid: row.pid, baseTicks: before ? ticks : 0, lastTicks: ticks });
          }
          privateMb += memoryMb(row.pid, 'RssAnon') ?? 0;
        }
        this.peakMb = Math.max(this.peakMb, privateMb);
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      });
  }

  async stop(): Promise<ProcessUsage> {
    clearInterval(this.timer);
    this.sample();
    await this.sampling;
    if (this.failure !== undefined) throw this.failure;
    const ticks = [...this.backends.values()].reduce((sum, b) => sum + b.lastTicks - b.baseTicks, 0);
    return {
      name: 'postgres-backends',
      count: this.backends.size,
      cpuSeconds: ticks / TICKS_PER_SECOND,
      peakRssMb: Math.round(this.peakMb),
    };
  }
}
