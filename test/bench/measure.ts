import type { Pool } from 'pg';
import type { Spawn } from './spawn-log';

/**
 * One task of a round. Its submission is the client's send (from submitAll, by idempotency key); its
 * attempts and end are the service's records in PostgreSQL.
 */
export interface TaskTiming {
  /** The task's id, which its agents' spawns carry (ATELIER_TASK_ID). */
  id: string;
  submittedMs: number;
  finishedMs: number | null;
  status: string;
  /**
   * Each attempt's record, by number (ATELIER_ATTEMPT): opened just before its agent is spawned, closed
   * just after it exits; `failed` when it has a failure class.
   */
  attempts: { number: number; startedMs: number; finishedMs: number | null; failed: boolean }[];
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
   * From each attempt's record to its agent's spawn (the first the log files under its task and
   * attempt), over the `n` attempts that have one.
   */
  recordToSpawnMs: { p50: number; max: number; n: number };
}

/**
 * Each task's executions in the spawn log against its attempts: a task must be run once per attempt
 * opened, and once in all when none of its attempts failed.
 */
export interface ExecutionsByTask {
  /** Tasks run otherwise, e.g. "<task id>: 2 executions for 1 attempt(s)". */
  wrong: string[];
  /** Executions filed under no task of these (no task id logged, or another task's). */
  unfiled: number;
}

/**
 * Submit to agent start (the spawn of the task's attempt 1), in ms: percentiles over `n` tasks (with
 * fewer than 100, p99 is the slowest).
 */
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
    id: string;
    idempotency_key: string;
    finished_at: Date | null;
    status: string;
    attempts: { number: number; started_at: string; finished_at: string | null; failed: boolean }[] | null;
  }>(
    // The bench's tasks have one run each: attempt numbers are unique within a task.
    `SELECT t.id, t.idempotency_key, t.finished_at, t.status,
       (SELECT json_agg(json_build_object('number', a.number, 'started_at', a.started_at,
          'finished_at', a.finished_at, 'failed', a.failure_class IS NOT NULL) ORDER BY a.run, a.number)
        FROM attempts a WHERE a.task_id = t.id) AS attempts
     FROM tasks t WHERE t.labels @> $1`,
    [{ bench: runLabel }],
  );
  return res.rows.map((r) => {
    const submittedMs = sentMs.get(r.idempotency_key);
    if (submittedMs === undefined) throw new Error(`no send time for the task of key ${r.idempotency_key}`);
    return {
      id: r.id,
      submittedMs,
      finishedMs: ms(r.finished_at),
      status: r.status,
      attempts: (r.attempts ?? []).map((a) => ({
        number: a.number,
        startedMs: Date.parse(a.started_at),
        finishedMs: a.finished_at ? Date.parse(a.finished_at) : null,
        failed: a.failed,
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

/** The first spawn the log files under this task and attempt, if any. */
const spawnOf = (spawns: Spawn[], taskId: string, attempt: number): Spawn | undefined =>
  spawns.find((s) => s.taskId === taskId && s.attempt === attempt);

/** Client send to the spawn of the task's attempt 1, over these tasks (one with no such spawn is left out of n). */
export function submitToStartMs(timings: TaskTiming[], spawns: Spawn[]): Latency {
  const latencies = sorted(timings.map((t) => (spawnOf(spawns, t.id, 1)?.startMs ?? Number.NaN) - t.submittedMs));
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
  const gaps = sorted(
    timings.flatMap((t) =>
      t.attempts.map((a) => (spawnOf(spawns, t.id, a.number)?.startMs ?? Number.NaN) - a.startedMs),
    ),
  );
  return { p50: percentile(gaps, 50), max: gaps[gaps.length - 1] ?? NaN, n: gaps.length };
}

/** See `ExecutionsByTask`. */
export function executionsByTask(timings: TaskTiming[], spawns: Spawn[]): ExecutionsByTask {
  const counts = new Map<string, number>();
  for (const s of spawns) if (s.taskId !== null) counts.set(s.taskId, (counts.get(s.taskId) ?? 0) + 1);
  const wrong = timings.flatMap((t) => {
    const executions = counts.get(t.id) ?? 0;
    const expected = t.attempts.some((a) => a.failed) ? t.attempts.length : 1;
    const opened = t.attempts.length;
    return executions === expected && opened === expected
      ? []
      : [`${t.id}: ${executions} executions for ${opened} attempt(s)`];
  });
  const ids = new Set(timings.map((t) => t.id));
  return { wrong, unfiled: spawns.filter((s) => s.taskId === null || !ids.has(s.taskId)).length };
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
    latencyMs: submitToStartMs(timings, spawns),
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
