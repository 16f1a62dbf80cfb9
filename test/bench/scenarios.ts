/** One benchmark scenario: `tasks` agent runs of `seconds` each on an agent worker with `slots` slots. */
export interface Scenario {
  name: string;
  description: string;
  tasks: number;
  seconds: number;
  slots: number;
  /**
   * What each task runs. sleep (the default): `sleep <seconds>`, or `true` when `seconds` is 0. worktree:
   * the task names a git repository, so it runs in a worktree of its own; the stand-in agent writes a
   * file there and sleeps `seconds`, and the task ends once its work is committed on its branch.
   */
  workload?: 'sleep' | 'worktree';
  /** burst: all submitted at once; rate: a steady `perSecond`; halfMax: half the no-op throughput measured before. */
  arrival: { kind: 'burst' } | { kind: 'rate'; perSecond: number } | { kind: 'halfMax' };
  /**
   * Runs measured, one after the other on the same stack; the result is the median one by makespan.
   * For the seconds-long scenarios, where one run's noise (a scheduler hiccup on 2 cores) is as large
   * as the differences that matter, and for throughput, which this machine's speed moves by ±10% from
   * one minute to the next.
   */
  rounds?: number;
  /** The seeds' figure for the same work, when they report one. */
  seed?: {
    makespanS?: number;
    efficiencyPct?: number;
    throughputPerS?: number;
    executionsPerTask?: number;
    completionPct?: number;
    /** How long their tasks waited to be claimed by a worker: our submit to agent start. */
    claim?: string;
    source: string;
  };
}

/**
 * No-op tasks submitted at once after the warm-up's first task. The first bursts after the stack starts
 * run slower than later ones, most likely until V8's optimizing compilers have compiled the hot code
 * (docs/benchmarks.md gives the figures).
 */
export const WARMUP_BURST = 40;

/** Rounds of each seconds-long scenario (see `Scenario.rounds`). */
const SHORT_SCENARIO_ROUNDS = 5;

export const SCENARIOS: Scenario[] = [
  {
    name: 'seed-10x0.5s-5slots',
    description: '10 tasks of 0.5 s on 5 slots (seed: quick application test)',
    tasks: 10,
    seconds: 0.5,
    slots: 5,
    arrival: { kind: 'burst' },
    rounds: SHORT_SCENARIO_ROUNDS,
    seed: {
      makespanS: 5.15,
      throughputPerS: 1.94,
      claim: '< 2 s on 5 workers, 30+ s on 1',
      source: 'seeds/000: 5 workers, 10 x 0.5 s in 5.15 s; task claim time 30+ s with 1 worker, < 2 s with 5',
    },
  },
  {
    name: 'seed-2x1s-2slots',
    description: '2 tasks of 1 s on 2 slots (seed: light load)',
    tasks: 2,
    seconds: 1,
    slots: 2,
    arrival: { kind: 'burst' },
    rounds: SHORT_SCENARIO_ROUNDS,
    seed: { makespanS: 2.42, efficiencyPct: 41.3, executionsPerTask: 2, source: 'seeds/002 test 1' },
  },
  {
    name: 'seed-4x1s-3slots',
    description: '4 tasks of 1 s on 3 slots (seed: medium load)',
    tasks: 4,
    seconds: 1,
    slots: 3,
    arrival: { kind: 'burst' },
    rounds: SHORT_SCENARIO_ROUNDS,
    seed: { makespanS: 3.76, efficiencyPct: 35.5, executionsPerTask: 2, source: 'seeds/002 test 2' },
  },
  {
    name: 'seed-6x0.5s-3slots',
    description: '6 tasks of 0.5 s on 3 slots (seed: higher load)',
    tasks: 6,
    seconds: 0.5,
    slots: 3,
    arrival: { kind: 'burst' },
    rounds: SHORT_SCENARIO_ROUNDS,
    seed: { makespanS: 2.38, efficiencyPct: 42.0, executionsPerTask: 1.5, source: 'seeds/002 test 3' },
  },
  {
    name: 'seed-stress-320-over-60s',
    description: '320 tasks of 0.5 s submitted steadily over 60 s on 5 slots (seed: stress test)',
    tasks: 320,
    seconds: 0.5,
    slots: 5,
    arrival: { kind: 'rate', perSecond: 320 / 60 },
    seed: {
      completionPct: 98.4,
      claim: '< 2 s on 5 workers, 30+ s on 1',
      source: 'seeds/000 stress test: 288 of 320 completed (their 98.4%), 3 failed; claims as above',
    },
  },
  {
    name: 'wide-200x10s-50slots',
    description: '200 tasks of 10 s on 50 slots',
    tasks: 200,
    seconds: 10,
    slots: 50,
    arrival: { kind: 'burst' },
  },
  {
    name: 'worktree-20x0.5s-5slots',
    description: '20 tasks of 0.5 s on 5 slots, each in a git worktree of its own, its work committed',
    tasks: 20,
    seconds: 0.5,
    slots: 5,
    workload: 'worktree',
    arrival: { kind: 'burst' },
    rounds: 3,
  },
  {
    name: 'noop-1000',
    description: '1000 no-op tasks (the agent exits at once) on 50 slots: throughput',
    tasks: 1000,
    seconds: 0,
    slots: 50,
    arrival: { kind: 'burst' },
    rounds: 3,
  },
  {
    name: 'latency-1-per-s',
    description: 'no-op tasks at a steady 1 task/s: submit-to-agent-start latency',
    tasks: 60,
    seconds: 0,
    slots: 4,
    arrival: { kind: 'rate', perSecond: 1 },
  },
  {
    name: 'latency-half-max',
    description: 'no-op tasks at half the measured no-op throughput: latency under load',
    tasks: 300,
    seconds: 0,
    slots: 50,
    arrival: { kind: 'halfMax' },
  },
];

/** --quick: the same shapes, smaller, so the whole set runs in a couple of minutes. */
export function quick(s: Scenario): Scenario {
  const scale: Record<string, Partial<Scenario>> = {
    'seed-stress-320-over-60s': { tasks: 80, arrival: { kind: 'rate', perSecond: 320 / 60 } },
    'wide-200x10s-50slots': { tasks: 100, seconds: 2 },
    'worktree-20x0.5s-5slots': { tasks: 10, rounds: 1 },
    'noop-1000': { tasks: 200, rounds: 1 },
    'latency-1-per-s': { tasks: 15 },
    'latency-half-max': { tasks: 100 },
  };
  return { ...s, ...(scale[s.name] ?? {}) };
}
