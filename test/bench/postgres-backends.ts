import { readFileSync } from 'node:fs';
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
 * closes between two samples is not seen; one that closes counts its CPU up to its last sample. A
 * PostgreSQL in a container of its own reports pids of its own namespace, which are other processes, or
 * none, here: when a listed pid is not a `postgres` process of this machine, nothing is measured.
 */
export class PostgresBackendSampler {
  private readonly startedAt = new Date();
  private readonly backends = new Map<string, Backend>();
  private peakMb = 0;
  private sampling: Promise<void> = Promise.resolve();
  /** The first failed sample's error, thrown by `stop()` (a sample in the background has no one to throw to). */
  private failure: unknown;
  /** A listed backend pid that is no postgres process here: the backends are not this machine's to read. */
  private foreign = false;
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
          if (!isPostgres(row.pid)) {
            this.foreign = true;
            continue;
          }
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

  /** What the backends used; undefined when they are not this machine's processes (not measured). */
  async stop(): Promise<ProcessUsage | undefined> {
    clearInterval(this.timer);
    this.sample();
    await this.sampling;
    if (this.failure !== undefined) throw this.failure;
    if (this.foreign) return undefined;
    const ticks = [...this.backends.values()].reduce((sum, b) => sum + b.lastTicks - b.baseTicks, 0);
    return {
      name: 'postgres-backends',
      count: this.backends.size,
      cpuSeconds: ticks / TICKS_PER_SECOND,
      peakRssMb: Math.round(this.peakMb),
    };
  }
}

/** Whether `pid` is a PostgreSQL process of this machine (gone meanwhile counts as one: it was listed). */
function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return true;
  }
}
