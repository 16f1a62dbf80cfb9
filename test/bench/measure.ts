import type { Pool } from 'pg';
import type { Spawn } from './spawn-log';

/**
 * One task of a round. Its submission is the client's send (from submitAll, by idempotency key); its
 * attempts and end are the service's records in PostgreSQL.
 */
export interface TaskTiming {
  submittedMs: number;
  finishedMs: number | null;
  status: string;
  /** Each attempt's record: opened just before its agent is spawned, closed just after it exits. */
  attempts: { startedMs: number; finishedMs: number | null }[];
}

export interface RunMetrics {
  tasks: number;
  succeeded: number;
  /** Agent executions, from the spawn log (test/bench/spawn-log.sh), whatever the service recorded. */
  executions: number;
  /** Attempt records in PostgreSQL: one per attempt, however many times its agent was spawned. */
  attemptRows: number;
  /** From the first client send until the last task's terminal write. */
  makespanS: number;
  throughputPerS: number;
  latencyMs: Latency;
  /** Median and worst of each phase: agent run time (spawn log), and the last attempt's record closed to the task's terminal write. */
  phasesMs: { run: { p50: number; max: number }; endToDone: { p50: number; max: number } };
  /** Most agents alive at once, from the spawn log's starts and exits (an execution with no exit logged counts as alive to the end). */
  peakAgents: number;
  /**
   * Most attempts open at once in PostgreSQL. An attempt's record closes a few ms after its agent's
   * process exits, while its slot has gone to the next agent: this may pass the slots by one or two
   * where agents never do.
   */
  peakOpenAttempts: number;
  /** From the first client send until every slot has an agent (the `slots`-th spawn); null with fewer tasks than slots. */
  allSlotsBusyMs: number | null;
  /**
   * From an attempt's record to its agent's spawn, where the log tells which spawn is whose: the worker
   * gives agents no task id, so only an attempt whose open record holds exactly one spawn, held by no
   * other attempt's, is paired (tasks that do not overlap).
   */
  recordToSpawnMs: { p50: number; max: number; n: number };
}

/** Submit to agent start, in ms: percentiles over `n` tasks (with fewer than 100, p99 is the slowest). */
export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  n: number;
}

const ms = (d: Date | null): number | null => (d ? d.getTime() : null);

/**
 * Reads every task labelled `bench=<runLabel>` with its attempts from PostgreSQL; `sentMs` gives each
 * one's send time by idempotency key.
 */
export async function loadTimings(
  pool: Pick<Pool, 'query'>,
  runLabel: string,
  sentMs: ReadonlyMap<string, number>,
): Promise<TaskTiming[]> {
  const res = await pool.query<{
    idempotency_key: string;
    finished_at: Date | null;
    status: string;
    attempts: { started_at: string; finished_at: string | null }[] | null;
  }>(
    `SELECT t.idempotency_key, t.finished_at, t.status,
       (SELECT json_agg(json_build_object('started_at', a.started_at, 'finished_at', a.finished_at) ORDER BY a.number)
        FROM attempts a WHERE a.task_id = t.id) AS attempts
     FROM tasks t WHERE t.labels @> $1`,
    [{ bench: runLabel }],
  );
  return res.rows.map((r) => {
    const submittedMs = sentMs.get(r.idempotency_key);
    if (submittedMs === undefined) throw new Error(`no send time for the task of key ${r.idempotency_key}`);
    return {
      submittedMs,
      finishedMs: ms(r.finished_at),
      status: r.status,
      attempts: (r.attempts ?? []).map((a) => ({
        startedMs: Date.parse(a.started_at),
        finishedMs: a.finished_at ? Date.parse(a.finished_at) : null,
      })),
    };
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/** Most runs alive at one instant, from their start and end times (no end: alive to the last). */
export function peakConcurrency(intervals: { startedMs: number; finishedMs: number | null }[]): number {
  const events = intervals.flatMap((i) => [
    { at: i.startedMs, delta: 1 },
    { at: i.finishedMs ?? Number.POSITIVE_INFINITY, delta: -1 },
  ]);
  // Ends sort before starts at the same instant: a slot freed and reused at once is not an overlap.
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let peak = 0;
  for (const e of events) {
    now += e.delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

/** Most agents alive at once, from the spawn log (an execution with no exit logged: alive to the last). */
export const peakAgents = (spawns: Spawn[]): number =>
  peakConcurrency(spawns.map((s) => ({ startedMs: s.startMs, finishedMs: s.exitMs })));

const sorted = (values: number[]): number[] => values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);

/** Client send to the first attempt's record, over these tasks. */
export function submitToStartMs(timings: TaskTiming[]): Latency {
  const latencies = sorted(timings.map((t) => (t.attempts[0] ? t.attempts[0].startedMs - t.submittedMs : Number.NaN)));
  return {
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    n: latencies.length,
  };
}

/** See `RunMetrics.recordToSpawnMs`. */
export function recordToSpawnMs(timings: TaskTiming[], spawns: Spawn[]): RunMetrics['recordToSpawnMs'] {
  const attempts = timings.flatMap((t) => t.attempts);
  const holds = (a: TaskTiming['attempts'][number], s: Spawn): boolean =>
    s.startMs >= a.startedMs && s.startMs <= (a.finishedMs ?? Number.POSITIVE_INFINITY);
  const gaps = sorted(
    attempts.flatMap((a) => {
      const inside = spawns.filter((s) => holds(a, s));
      const only = inside.length === 1 ? inside[0] : undefined;
      if (only === undefined || attempts.some((other) => other !== a && holds(other, only))) return [];
      return [only.startMs - a.startedMs];
    }),
  );
  return { p50: percentile(gaps, 50), max: gaps[gaps.length - 1] ?? NaN, n: gaps.length };
}

/** One round's measures: its tasks' records, and the executions the spawn log shows in it. */
export function summarize(timings: TaskTiming[], spawns: Spawn[], slots: number): RunMetrics {
  const first = Math.min(...timings.map((t) => t.submittedMs));
  const last = Math.max(...sorted(timings.map((t) => t.finishedMs ?? Number.NaN)));
  const makespanS = (last - first) / 1000;
  const attempts = timings.flatMap((t) => t.attempts);
  const runs = sorted(spawns.map((s) => (s.exitMs ?? Number.NaN) - s.startMs));
  const ends = sorted(
    timings.map((t) => (t.finishedMs ?? Number.NaN) - (t.attempts[t.attempts.length - 1]?.finishedMs ?? Number.NaN)),
  );
  return {
    tasks: timings.length,
    succeeded: timings.filter((t) => t.status === 'succeeded').length,
    executions: spawns.length,
    attemptRows: attempts.length,
    makespanS,
    throughputPerS: timings.length / makespanS,
    latencyMs: submitToStartMs(timings),
    phasesMs: {
      run: { p50: percentile(runs, 50), max: runs[runs.length - 1] ?? NaN },
      endToDone: { p50: percentile(ends, 50), max: ends[ends.length - 1] ?? NaN },
    },
    peakAgents: peakAgents(spawns),
    peakOpenAttempts: peakConcurrency(attempts),
    allSlotsBusyMs: timings.length >= slots ? (sorted(spawns.map((s) => s.startMs))[slots - 1] ?? NaN) - first : null,
    recordToSpawnMs: recordToSpawnMs(timings, spawns),
  };
}
