import type { Environment } from './environment';
import type { ExecutionsByTask, Latency, RunMetrics } from './measure';
import type { MachineUsage, ProcessUsage } from './process-stats';
import type { RoundTrips } from './round-trips';
import type { Scenario } from './scenarios';

/** Measures of a stored result: those added since may be absent from results of before them. */
export type StoredMetrics = Omit<RunMetrics, 'executions' | 'peakAgents' | 'recordToSpawnMs' | 'latencyMs'> &
  Partial<Pick<RunMetrics, 'executions' | 'peakAgents' | 'recordToSpawnMs'>> & { latencyMs: Latency };

export interface ScenarioResult {
  scenario: Scenario;
  /** The machine, versions and settings this scenario ran with. */
  environment: Environment;
  metrics: StoredMetrics;
  idealMakespanS: number | null;
  efficiencyPct: number | null;
  /** The seeds' own formula: sequential time / (workers × makespan). */
  seedFormulaEfficiencyPct: number | null;
  /**
   * Every round's makespan, in run order, when the scenario ran several (`metrics` is the median one,
   * but for its latencies and record-to-spawn gaps, which are every round's tasks').
   */
  roundMakespansS?: number[];
  /** Every round's tasks together. */
  allRounds: RoundCounts;
  /** The steady arrival rate `latency-half-max` ran at: half the no-op throughput measured before it in the same run. */
  halfMaxRatePerS?: number;
  usage: ProcessUsage[];
  /** The whole machine's CPU during the scenario, per round (absent in results from before it was measured). */
  machine?: MachineUsage;
  /** Database work per task (absent in results from before it was measured). */
  roundTrips?: RoundTrips;
  ranAt: string;
}

export interface RoundCounts {
  tasks: number;
  succeeded: number;
  /** Attempt records in PostgreSQL. */
  attemptRows: number;
  /** Agent executions in the spawn log, from the first round's first send until the stack stopped (absent before the log was kept). */
  executions?: number;
  /** Each task's executions against its attempts, from the log's task ids (absent before the log had them). */
  executionsByTask?: ExecutionsByTask;
  /** Of those, the ones with no exit logged: agents killed (absent before the log was kept). */
  executionsWithoutExit?: number;
  /** Most agents alive at once in any round, from the spawn log (absent before the log was kept). */
  peakAgents?: number;
  /** Before the spawn log: the spawner helper's children counted every 50 ms, which can miss an agent that lives less. */
  sampledPeakAgents?: number;
  /** Attempts open at once in PostgreSQL (absent in results from before it was told apart). */
  peakOpenAttempts?: number;
}

/** What test/bench/results.json holds: each scenario's last result, with the environment it ran in. */
export interface Results {
  scenarios: ScenarioResult[];
}
