import type { Pool } from 'pg';

export interface TaskTiming {
  createdMs: number;
  finishedMs: number | null;
  status: string;
  attempts: { startedMs: number; finishedMs: number | null }[];
}

export interface RunMetrics {
  tasks: number;
  succeeded: number;
  executions: number;
  makespanS: number;
  throughputPerS: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Median and worst of each phase: agent run time, and agent end to the task's terminal write. */
  phasesMs: { run: { p50: number; max: number }; endToDone: { p50: number; max: number } };
  /**
   * Most attempts open at once in PostgreSQL. An attempt's record closes a few ms after its agent's
   * process exits, while its slot has gone to the next agent: this may pass the slots by one or two
   * where agents never do (AgentProcessSampler counts those).
   */
  peakOpenAttempts: number;
  /** From the first submission until every slot has an agent (the `slots`-th agent start); null with fewer tasks than slots. */
  allSlotsBusyMs: number | null;
}

const ms = (d: Date | null): number | null => (d ? d.getTime() : null);

/** Reads every task labelled `bench=<runLabel>` with its attempts from PostgreSQL. */
export async function loadTimings(pool: Pick<Pool, 'query'>, runLabel: string): Promise<TaskTiming[]> {
  const res = await pool.query<{
    created_at: Date;
    finished_at: Date | null;
    status: string;
    attempts: { started_at: string; finished_at: string | null }[] | null;
  }>(
    `SELECT t.created_at, t.finished_at, t.status,
       (SELECT json_agg(json_build_object('started_at', a.started_at, 'finished_at', a.finished_at) ORDER BY a.number)
        FROM attempts a WHERE a.task_id = t.id) AS attempts
     FROM tasks t WHERE t.labels @> $1`,
    [{ bench: runLabel }],
  );
  return res.rows.map((r) => ({
    createdMs: r.created_at.getTime(),
    finishedMs: ms(r.finished_at),
    status: r.status,
    attempts: (r.attempts ?? []).map((a) => ({
      startedMs: Date.parse(a.started_at),
      finishedMs: a.finished_at ? Date.parse(a.finished_at) : null,
    })),
  }));
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

/** Most agent runs alive at one instant, from their start and end times. */
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

/** Submission to the first agent's start, over these tasks. */
export function submitToStartMs(timings: TaskTiming[]): RunMetrics['latencyMs'] {
  const latencies = timings
    .map((t) => (t.attempts[0] ? t.attempts[0].startedMs - t.createdMs : Number.NaN))
    .filter((v) => !Number.isNaN(v))
    .sort((a, b) => a - b);
  return {
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}

export function summarize(timings: TaskTiming[], slots: number): RunMetrics {
  const first = Math.min(...timings.map((t) => t.createdMs));
  const last = Math.max(...timings.map((t) => t.finishedMs ?? Number.NaN).filter((v) => !Number.isNaN(v)));
  const makespanS = (last - first) / 1000;
  const attempts = timings.flatMap((t) => t.attempts);
  const sorted = (values: number[]): number[] => values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  const runs = sorted(attempts.map((a) => (a.finishedMs ?? Number.NaN) - a.startedMs));
  const ends = sorted(
    timings.map((t) => (t.finishedMs ?? Number.NaN) - (t.attempts[t.attempts.length - 1]?.finishedMs ?? Number.NaN)),
  );
  return {
    tasks: timings.length,
    succeeded: timings.filter((t) => t.status === 'succeeded').length,
    executions: attempts.length,
    makespanS,
    throughputPerS: timings.length / makespanS,
    latencyMs: submitToStartMs(timings),
    phasesMs: {
      run: { p50: percentile(runs, 50), max: runs[runs.length - 1] ?? NaN },
      endToDone: { p50: percentile(ends, 50), max: ends[ends.length - 1] ?? NaN },
    },
    peakOpenAttempts: peakConcurrency(attempts),
    allSlotsBusyMs:
      timings.length >= slots ? (sorted(attempts.map((a) => a.startedMs))[slots - 1] ?? NaN) - first : null,
  };
}
