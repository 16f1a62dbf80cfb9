import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { DEV_SERVER_DYNAMIC_CONFIG, DEV_SERVER_SQLITE_PRAGMAS } from '../../src/temporal/dev-server';
import { AGENT_HEARTBEAT_TIMEOUT_SECONDS } from '../../workflows/definitions';
import { TEMPORAL_BIN } from '../support/test-services';
import { writeFormatted } from '../support/write-formatted';
import type { RunMetrics } from './measure';
import type { MachineUsage, ProcessUsage } from './process-stats';
import type { RoundTrips } from './round-trips';
import { SCENARIOS, WARMUP_BURST, type Scenario } from './scenarios';

const ROOT = resolve(__dirname, '../../..');
const RESULTS_FILE = resolve(ROOT, 'test/bench/results.json');
const REPORT_FILE = resolve(ROOT, 'docs/benchmarks.md');

export interface ScenarioResult {
  scenario: Scenario;
  metrics: RunMetrics;
  idealMakespanS: number | null;
  efficiencyPct: number | null;
  /** The seeds' own formula: sequential time / (workers × makespan). */
  seedFormulaEfficiencyPct: number | null;
  /**
   * Every round's makespan, in run order, when the scenario ran several (`metrics` is the median one,
   * but for its latencies, which are every round's tasks').
   */
  roundMakespansS?: number[];
  /** Every round's tasks together: how many, succeeded, agent runs, and the most agents at once in any round. */
  allRounds: RoundCounts;
  /** The steady arrival rate `latency-half-max` ran at: half the no-op throughput measured before it. */
  halfMaxRatePerS?: number;
  usage: ProcessUsage[];
  /** The whole machine's CPU during the scenario, per round (absent in results from before it was measured). */
  machine?: MachineUsage;
  /** Database work per task (absent in results from before it was measured). */
  roundTrips?: RoundTrips;
  ranAt: string;
}

interface RoundCounts {
  tasks: number;
  succeeded: number;
  executions: number;
  /** Agent processes alive at once (before 2026-12-07's last run: attempts open at once in PostgreSQL). */
  peakConcurrent: number;
  /** Attempts open at once in PostgreSQL (absent in results from before it was told apart). */
  peakOpenAttempts?: number;
}

interface Results {
  environment: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

export function readResults(): Results {
  if (!existsSync(RESULTS_FILE)) return { environment: {}, scenarios: [] };
  return JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Results;
}

const version = (pkg: string): string =>
  (JSON.parse(readFileSync(resolve(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;

function environment(quick: boolean): Record<string, unknown> {
  const cli = execFileSync(TEMPORAL_BIN, ['--version'], { encoding: 'utf8' }).trim();
  return {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
    },
    versions: {
      node: process.version,
      temporalCli: cli,
      temporalSdk: version('@temporalio/worker'),
      nest: version('@nestjs/core'),
    },
    settings: {
      devServerSqlitePragmas: DEV_SERVER_SQLITE_PRAGMAS,
      devServerDynamicConfig: DEV_SERVER_DYNAMIC_CONFIG,
      heartbeatTimeoutSeconds: AGENT_HEARTBEAT_TIMEOUT_SECONDS,
      warmUp: `unmeasured, on each scenario's fresh stack: 1 task of its workload, then ${WARMUP_BURST} no-op tasks at once`,
      agents:
        'test/bench/agents.yaml: `sleep <seconds>` and `true`, real child processes; the worktree workload: the stand-in agent (test/agents/stand-in-agent.mjs)',
      quick,
    },
  };
}

/** `text` in lines of at most `width` characters, broken at spaces. */
function wrap(text: string, width = 105): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line].join('\n');
}

const fmt = (v: number | null | undefined, digits = 1): string =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);

/** ", median of 5: 1.20–1.31 s" for a scenario of several rounds. */
function rounds(r: ScenarioResult): string {
  const all = r.roundMakespansS;
  if (!all || all.length < 2) return '';
  return `, median of ${all.length}: ${fmt(Math.min(...all), 2)}–${fmt(Math.max(...all), 2)} s`;
}

function markdown(results: Results): string {
  const rows = results.scenarios.map((r) => {
    const m = r.metrics;
    const seed = r.scenario.seed;
    const cpu = r.usage.map((u) => `${u.name} ${fmt(u.cpuSeconds)} s / ${u.peakRssMb} MB`).join('; ');
    const counts = r.allRounds;
    return [
      r.halfMaxRatePerS === undefined ? r.scenario.name : `${r.scenario.name} (${fmt(r.halfMaxRatePerS)}/s)`,
      `${counts.succeeded}/${counts.tasks}`,
      `${fmt(m.makespanS, 2)} s${rounds(r)}${seed?.makespanS ? ` (seed ${seed.makespanS} s)` : ''}`,
      r.idealMakespanS === null ? '–' : `${fmt(r.idealMakespanS, 2)} s`,
      r.efficiencyPct === null ? '–' : `${fmt(r.efficiencyPct)}%`,
      r.seedFormulaEfficiencyPct === null
        ? '–'
        : `${fmt(r.seedFormulaEfficiencyPct)}%${seed?.efficiencyPct ? ` (seed ${seed.efficiencyPct}%)` : ''}`,
      `${fmt(m.throughputPerS, 2)}/s${seed?.throughputPerS ? ` (seed ${seed.throughputPerS}/s)` : ''}`,
      `${fmt(m.latencyMs.p50, 0)} / ${fmt(m.latencyMs.p95, 0)} / ${fmt(m.latencyMs.p99, 0)}`,
      `${counts.executions}/${counts.tasks}${seed?.executionsPerTask ? ` (seed ${seed.executionsPerTask}×)` : ''}`,
      `${counts.peakConcurrent}/${r.scenario.slots}`,
      cpu,
    ].join(' | ');
  });
  const env = results.environment as { machine?: unknown; versions?: unknown; settings?: unknown };
  return `# Benchmarks

Generated by \`npm run bench\` (\`--scenario NAME\` for one, \`--quick\` for short versions) from
\`test/bench/results.json\`. Each scenario drives the real stack: REST API, Temporal dev server, workflow
worker, agent worker and PostgreSQL, started as \`npm run up\` starts them, with real agent child processes
(\`sleep\`, \`true\`; in \`worktree-20x0.5s-5slots\` the stand-in agent, a Node script, which writes a file in the
task's git worktree and sleeps). Times come from PostgreSQL: submission is the task row's creation, agent
start is the attempt's start (just before the process is spawned), the end is the task's terminal write
(for a worktree task, once its work is committed on its branch). Before its rounds, each scenario's
fresh stack is warmed, unmeasured: one task of the scenario's workload, then ${WARMUP_BURST} no-op tasks at once,
so that the rounds measure the service as it runs once it has been up a while (see "What limits the
numbers" for the first bursts after a start).

- **Ideal makespan**: ceil(tasks / slots) × task duration, what a perfect scheduler reaches.
  **Efficiency** = ideal / actual. **Seed formula** = tasks × duration / (slots × actual), the formula the
  seeds' 39.6% figure uses, for a like-for-like comparison.
- **Latency**: submit to agent start, p50 / p95 / p99 in ms, over the tasks of every round.
- **Done, executions/tasks**: tasks succeeded, and agent runs recorded, per task submitted, over every
  round; executions must equal tasks when nothing fails (the seeds ran tasks 1.5–2× each).
- **Peak/slots**: most agent processes alive at once in any round (the spawner helper's children,
  counted every 50 ms), against the agent worker's slots. An attempt's record in PostgreSQL closes a
  few ms after its process exits, while its slot has gone to the next agent, so attempts open at once
  there may pass the slots by one (in \`results.json\`, \`peakOpenAttempts\`); agents do not.
  \`npm run bench\` exits with an error when a scenario has more executions than tasks, a task that did
  not succeed, or more agents at once than slots.
- **Rounds**: the seconds-long seed scenarios run 5 times in a row on the same stack (the worktree
  scenario and \`noop-1000\` 3 times); the makespan, efficiency and throughput are the median round's
  (by makespan), with the range of all of them.
- **latency-half-max** runs at half the no-op throughput measured before it, the rate in its name.
- **CPU / memory**: CPU seconds used during the scenario (per round) and peak RSS, per process.

| scenario | done | makespan | ideal | efficiency | seed formula | throughput | latency ms | executions/tasks | peak/slots | CPU s / peak RSS |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

## Targets

| target | measured |
|---|---|
${targets(results)}

## CPU per task

${cpuPerTask(results)}

## Database round trips per task

${roundTripsPerTask(results)}

## Short tasks: the time beyond the ideal

${shortTaskBudget(results)}

## What limits the numbers

Profiled on this 2-core machine with \`perf\` (every process at once, and each process alone, during
no-op bursts), Node's CPU profiler and the events' times in Temporal's histories:

- **CPU per task at full load, 27–55 ms in all on the faster hosts of this machine (27.0 in a full run
  of 2026-12-07), 70–105 ms on the slower ones (95.2 in the full run above)** (the
  whole machine's row), which on 2 cores caps throughput at 35–74 tasks/s (19–29 on the slower hosts)
  even with every core busy; the benchmark's own client takes
  about 1 ms of it. The Temporal dev server takes about half: 14–30 ms (34–44 on the slower hosts), in
  its SQLite store through a pure-Go driver, on a single connection shared by all its
  services (the store's own setting), so its store work runs one statement at a time. Per task it makes
  12–14 store operations (its \`persistence_requests\` metric): six updates of the workflow's state (each
  workflow task started and completed, the attempt started and completed), two history reads, the
  workflow's creation and one read of it, and two to four for the backlog of the task queues and the
  reads of its own transfer, visibility and timer queues (in a burst, 1.75 reads of the transfer queue
  per task with up to 100 reads a second, 0.5 with 20). Of its CPU, its visibility records take about
  20–30% (each workflow's start,
  the \`BuildIds\` search attribute the server itself sets when the first workflow task completes, and
  its close), and parsing SQL 12–15% (the store prepares every statement anew). In a burst of 1000 its
  share grows, as workflow tasks wait in the task queue's backlog (written to and read back from
  SQLite) rather than meeting a waiting poller. The workflow worker takes 7–11 ms (two workflow tasks:
  the SDK starts a watchdog thread for every call into the workflow sandbox, 75 µs per call here,
  and swaps the sandbox's globals between workflows), the API 3.5–5.5 ms, the agent worker 4–7 ms
  and its spawner helper 1–2 ms.
- **Measured later on 2026-12-06 (an AMD EPYC host), in runs taken in turn, three changes together**:
  the workflows loaded once per workflow sandbox instead of once per workflow (the SDK's
  \`preloadModules\`: our workflow modules keep no state of their own); the dev server's search-attribute
  cache turned back on (the CLI turns it off, so that attributes added by hand show at once, and the
  server then read its cluster metadata and namespace from SQLite six times per task: by its own
  \`persistence_requests\` metric, 18.2 store operations per task before, 12.1 after); and the benchmark's
  submissions sent with Node's HTTP client instead of \`fetch\`. \`noop-1000\`: 41.2 / 42.4 → 47.1 / 46.7
  tasks/s in two pairs of runs (34.2 → 32.2 in a third, as the host slowed down); CPU per task: workflow
  worker 8.1 / 7.9 → 7.4 / 7.1 ms, bench client 1.6 → 0.6–0.7 ms, and our processes' CPU against the dev
  server's 5% lower in each pair.
- **Measured later on 2026-12-06 (an Intel Xeon host), with the events' times in the histories of
  bursts of ten 0.5 s tasks**: the server's transfer queue, which hands every new workflow task and
  every attempt to matching, is read at most 20 times a second per history shard, and the dev server
  has one shard. In a burst the attempts waited 20–45 ms between being scheduled and being handed to
  the agent worker, and at a steady 20 tasks/s every hand-over waited up to 50 ms for the next read.
  Read up to 100 times a second (\`history.transferProcessorMaxPollRPS=100\`), submit to agent start at
  half the measured maximum went from 93–96 ms to 19–25 ms (p50; p99 141 → 74 ms in full runs), in the
  seeds' 320 tasks over 60 s from 77 to 27 ms (p50), and an attempt's hand-over in a burst to 4–10 ms;
  no-op throughput stayed within noise (46.3 / 43.4 / 43.1 / 36.9 / 46.1 tasks/s against
  46.7 / 47.4 / 39.6 / 39.4 / 40.2, in runs taken in turn), and so did 10 × 0.5 s on 5 slots: its first
  wave is set by the CPU the burst's ten tasks need, not by hand-overs. Unthrottled reads (1000 a
  second) cost throughput in bursts (34.4 / 41.5 / 35.1 / 42.4 tasks/s against 42.0 / 41.5 / 44.6 /
  45.6). The agent worker also reads a task and its run's number in one statement now: 7.4 PostgreSQL
  transactions per task instead of 8.4; throughput, and the agent worker's time from an attempt's
  hand-over to its agent's spawn (p50 3–5 ms, p90 10–25 ms in a burst), within noise.
- **Measured later on 2026-12-06 (another AMD EPYC host, in a session of its own)**: this host ran the
  same code much slower. \`noop-1000\` ran at 18.2–25.8 tasks/s in thirteen runs, at 71–105 ms of CPU
  per task over the whole machine (44.8 in the last full run on the Intel Xeon host), although every run made the same
  14.6–15.0 Temporal store operations and 7.5 PostgreSQL transactions per task; 10 × 0.5 s on 5 slots
  took 1.29–1.44 s (medians of five rounds, in ten runs) and every slot was busy 200–380 ms after the
  first submission. Fixed workloads timed before four of those runs did not tell the slow runs from the
  fast ones (SHA-256 of 64 MiB in 38–43 ms, a JSON round trip of 100,000 objects in 77–84 ms, a spawn of
  \`true\` from the benchmark in 7–12 ms, a byte to \`cat\` and back through pipes in 60–74 µs, both for
  a run at 71 and one at 105 ms of CPU per task), so the benchmark reports no such probe: the CPU per
  task above is the measure of the host. In the histories of bursts of ten 0.5 s tasks (their later
  rounds), all ten workflows had started 30–65 ms after the first submission; the workflow worker
  received their first workflow tasks two at a time, a pair every 10–40 ms (the SDK keeps 2 of its 10
  workflow-task polls on the task queue, 8 on its sticky queue), and answered each 30–55 ms after
  receiving it (11–16 ms at idle), as every process waited for the same 2 cores. Node's CPU profiler on
  the agent worker found 6–7% of its CPU in looking up the agent's program on \`PATH\`: an exception was
  built for every directory that did not hold it. It is now looked up without one, 3× faster (110
  against 330 µs per agent start with ten directories before the program's), and 2% in signalling the
  process group of an agent that had exited (Node throws when the group is gone): the spawner helper now
  kills that group itself, before it reaps the agent. In the API, the profile is spread thin: the
  Temporal client's gRPC and protobuf code about 11%, and \`pino-http\`'s per-request child loggers 5%
  even when request lines are not written (\`LOG_LEVEL=warn\`).
- **Measured in a later session on 2026-12-06 (the slower AMD EPYC host), in runs taken
  in turn**: the first bursts after a stack starts run slower than later ones. With one warm-up task, the
  rounds of 10 × 0.5 s on 5 slots went 1.56, 1.43, 1.25, 1.25, 1.27, 1.22 s and 1.56, 1.44, 1.41, 1.29,
  1.31, 1.31 s, and in fourteen rounds the first took 1.73 s and the others 1.26–1.41 s; after a burst of
  40 no-op tasks the first rounds took 1.25 and 1.35 s, like the later ones. So the warm-up now includes
  that burst, and the medians above are of a service that has been up a while. A no-op burst
  suffices, so what it warms is not the agent's run; nor the pools' connections alone (kept warm, they
  did not help: see below); most likely it is the code, which V8's optimizing compilers compile only
  after many calls. The earlier full runs of 2026-12-07 were this host's: their CPU
  per task (76–78 ms over the whole machine in its last three full runs) is that of the other slow runs on it. Where the processes run
  matters on this machine: with the service's Node processes (API, workers, spawner helper, agents, the
  benchmark's client) pinned to one core by \`taskset\` and the dev server left free on both,
  \`noop-1000\` ran at 28.0 and 29.9 tasks/s against 21.6 and 23.4 unpinned, at 61–67 ms of CPU per task
  against 81–90 (every process took less, the dev server too), while 10 × 0.5 s on 5 slots stayed
  within noise (1.36 and 1.37 s against 1.39 and 1.36); with the dev server also pinned, to the other
  core, it became the bottleneck on its one core (19.3–30.5 tasks/s). Most likely, waking a process on the
  other core (an interrupt between cores, which the hypervisor handles) costs more here than sharing one. The service does not pin its processes: how a
  machine's cores are best shared depends on the machine, and this one is a benchmark host, not a
  deployment. Tried without effect the same day: V8's single-threaded garbage collector for the Node
  processes (\`--single-threaded-gc\`: 25.2 and 22.2 tasks/s against 21.8 and 22.4), and one thread
  instead of one per core for the Tokio runtime of the Temporal SDK's core in the workers
  (\`TOKIO_WORKER_THREADS=1\`: 26.4 and 20.1 tasks/s against 23.3 and 25.9).
- **Measured in a third session on 2026-12-06 (an AMD EPYC host), in runs taken in turn: the order in
  which a burst's tasks are started.** The benchmark sends a burst's submissions at once, so all ten
  tasks of 10 × 0.5 s on 5 slots go through the API, the dev server and the workflow worker together,
  and the first five reach their agents only once most of the work of all ten is done (task by task,
  the first wave's agents do not start in submission order either). A client that submits one task
  after another, each when the one before has been answered, had every slot busy 150–165 ms after its
  first submission instead of 210–220, and medians of 1.21 and 1.25 s against 1.28 and 1.32 s (p50
  submit to start 82–95 ms against 180–200). The API doing the same itself, one submission at a time
  whatever the client sends, came close (1.23 and 1.27 s against 1.32 and 1.37 s) but would cap
  throughput at one submission's latency, so it is not done; handing only the workflow starts to
  Temporal in arrival order, one or two at a time, stayed within noise (1.24–1.33 s in six runs against
  1.26–1.37 s in seven; \`noop-1000\` 25.1 and 22.0 tasks/s against 23.1 and 22.6). A client that
  wants its first tasks started first can submit them in order; a dependency plan starts its tasks by
  priority and submission order.
- **This machine**: kernel entries (page faults, system calls, context switches) cost several times
  what they cost on bare metal: 25–35% of all CPU is in the kernel, much of it in the hypervisor's
  paths, and a \`spawn\` of \`true\` from Node takes 4–6 ms (19 ms from a process of 300 MB). Its speed
  also varies by the hour: \`noop-1000\` ran at 40–48 tasks/s on 2026-11-22 with the code of that day,
  which ran at 17.5 tasks/s early on 2026-12-06; later that day the final code ran it at 25–27 tasks/s,
  and hours after at 46–50 tasks/s alone and 35–39 tasks/s after the other scenarios. The host changes
  too: a full run of 2026-12-06 was on an Intel Xeon host, where within the same
  hour-and-a-half the same code took 10 × 0.5 s on 5 slots in 1.16–1.26 s and ran \`noop-1000\` at
  36–48 tasks/s (41.7 in that full run, at 44.8 ms of CPU per task); the next ones ran on a slower AMD
  EPYC host, one of 2026-12-07 on a much faster one, and the one above on a slow one again (see below).
- **The full runs of 2026-12-07 (the AMD EPYC host)** count every round: done, executions and peak over
  all rounds, latencies over every round's tasks (before, the median round's alone, so 10 × 0.5 s had
  ten latencies a round and its p95 and p99 were its slowest). The first, in the morning, ran at 78.3 ms
  of CPU per task over the whole machine: \`noop-1000\` 23.7 tasks/s, 10 × 0.5 s on 5 slots 1.35 s, and
  at 1 task/s a p50 of 57 ms (49 and 50 ms in two runs of that scenario alone right after). The second,
  later that day on the code of that day's changes (none on the measured path but a check that finds
  no locks to count in a submission without any), ran at 78.4 ms: 24.4 tasks/s, 1.35 s, and a p50 of
  46 ms at 1 task/s. A run of that day with the project compiling on the same cores meanwhile took
  124 ms of CPU per task and ran \`noop-1000\` at 15.8 tasks/s: it is not reported, and
  \`npm run bench\` wants the machine to itself. The third, in a later session of that day (an AMD
  EPYC host again, by its name, but about three times as fast: 27.0 ms of CPU per task, every process
  taking a third of what it took before, the dev server 14.3 ms against 38.3), ran \`noop-1000\` at
  69.3 tasks/s, 10 × 0.5 s on 5 slots in 1.10 s and a p50 of 19 ms at 1 task/s: those three targets
  are met; the session's changes touch nothing on the measured path but the API's check of a call's
  \`Host\` and \`Origin\` (a URL parsed per \`/v1\` request). An earlier full run of that session, on the
  same host, stopped with an error: \`wide-200x10s-50slots\` counted 51 agents at once on 50 slots,
  from the attempts' start and end in PostgreSQL. An attempt's record closes a few ms after its
  agent's process exits, and the slot goes to the next agent at the exit, so on a fast host the next
  attempt's start came before the record's end; the benchmark now counts the agent processes
  themselves (the spawner helper's children, every 50 ms), and 50/50 is what it found. The one above,
  in a fourth session of that day, ran on a slow host again: 95.2 ms of CPU per task (the dev server
  43.6 ms against 14.3 in the third), \`noop-1000\` at 19.6 tasks/s, 10 × 0.5 s on 5 slots in 1.33 s and
  a p50 of 57 ms at 1 task/s, so on it only executions = tasks of the targets is met. Its code's changes
  on the measured path (the spawner helper serving signals as it reads them, with a few lock operations
  per spawn, and the agent worker reading each agent's start time from \`/proc\`) were measured against
  the code before them, in runs taken in turn on that host: \`noop-1000\` 20.2 and 21.7 tasks/s before
  against 19.6 and 23.0 after, the agent worker's CPU 7.2 and 7.2 ms per task against 8.0 and 6.8, and
  10 × 0.5 s on 5 slots 1.28 s against 1.32 s: within noise.
- **Measured in a fifth session of 2026-12-07, on a host of middle speed**, its changes on the measured
  path (a 15 s default deadline on the API's Temporal calls, set by a gRPC interceptor; the agent
  worker checking that it may enter a task's workdir; a success's release taking the one-statement
  path whatever the breaker's state) against the code before them (de02b69), in runs taken in turn:
  \`noop-1000\` 27.9 and 27.5 tasks/s before against 31.5 and 29.9 after, and 10 × 0.5 s on 5 slots
  1.26 s in all four runs: within noise, no full run taken.
- **Efficiency of 0.5 s tasks on the fast host**: in the third full run of 2026-12-07 (1.10 s), 10 × 0.5 s
  on 5 slots lost 102 ms to the ideal, 53 more than 95% allows. In the events' times of five rounds of it run alone,
  the first wave's fifth agent started 85–112 ms after the first submission (a lone task: 19 ms), the
  first three 46–94 ms, as the ten submissions of the burst go through the API, the dev server and the
  workflow worker together; and each agent of the second wave started 20–25 ms after the agent before it
  on its slot exited: the shared queue's worker, which stops asking Temporal for work while every slot
  is taken, asks again when one frees, then the attempt passes the gate and is recorded before its
  agent is spawned. Asking for work with every slot taken would take the poll off the hand-over, but
  binds a task to a worker before that worker has a slot for it, while another may be idle (as with
  worktrees, above). Half of the workflow-task polls on the task queue instead of 2 of 10 (the SDK's
  \`nonStickyToStickyPollRatio\` of 1), so the burst's first workflow tasks are taken more than two at a
  time, stayed within noise: 1.12 and 1.12 s against 1.11 and 1.11 s, in runs taken in turn.
- **The same on the slow host of the full run above**, from the events' times of a round in the
  workflows' histories and marks the agent worker wrote for that run only: the ten workflows had all
  started within 17 ms of the first, but the workflow worker was handed their first workflow tasks two
  at a time (the fifth 108 ms after the first workflow started) and took 30–73 ms to answer each
  (11–16 ms at idle), as every process waited for the same 2 cores. Each attempt then waited 15–26 ms
  between being scheduled and being handed to the agent worker, 14–26 ms more before its activity code
  ran (the SDK's core passing the task to Node), and 6–10 ms to be read, pass the gate and be recorded:
  the fifth agent started 230 ms after the first workflow. A second-wave agent started 9–40 ms after
  the agent before it on its slot exited: the poll for it took 3–11 ms, the rest went to the same
  steps, while the first wave's ends were being recorded on the same cores.
- **Measured on 2026-12-06, the code before and after that day's changes, in runs taken in turn on the
  same machine**: 10 × 0.5 s on 5 slots 1.51 s → 1.37 s; 6 × 0.5 s on 3 slots 1.33 s → 1.22 s;
  200 × 10 s on 50 slots 88.3% → 90.3%; \`noop-1000\` 17.5 → 26.4 tasks/s (CPU per task: agent worker
  28.9 → 6.7 ms plus 2 ms in the spawner, dev server 37.0 → 29.7 ms); submit to start at 1 task/s,
  p50 54 → 51 ms. The changes: agents started through the spawner helper instead of Node's
  \`child_process\`, which forked the whole agent worker for every agent (copying its page tables,
  blocking its event loop until the exec, and then paying a copy-on-write fault for every page either
  side touched); and tasks started at a workflow code level, so their workflows ask no \`patched()\`
  and write no patch marker and no \`TemporalChangeVersion\` upsert (one visibility write less per
  task: about 11% of the dev server's CPU, in runs taken in turn).
- **Submit to agent start, 25–35 ms at idle here** (the events' times in the histories of ten lone
  no-op tasks, one every second, on 2026-12-06): the workflow has started 8–13 ms after the request was
  sent (the API validates and stores the task and starts its workflow), the server hands its first
  workflow task to the workflow worker 4 ms later, the worker answers 11–16 ms after that (the SDK
  creates the workflow in its sandbox and passes the activation between its Rust core and the workflow
  thread; the second workflow task, in a workflow it has in hand, takes 6–9 ms), the server hands the
  attempt to the agent worker 2–5 ms later, and the agent worker then reads the task, passes the
  cluster-wide gate and records the attempt. The no-op agent's attempt ends 14–20 ms after it was
  handed over and the workflow 48–65 ms after the request. In a burst every stage queues for the same
  2 cores, so the fifth task of a burst of ten starts 100–170 ms after the first submission; short tasks pay that once per wave, which is why 0.5 s
  tasks lose the most efficiency and 10 s tasks little. The workflow worker finishes a burst's first
  workflow tasks together: in a burst of ten, the first task's workflow task, handed over 17 ms after
  its submission, was answered at 154 ms, and the other nine between 164 and 169 ms (the events' times
  in their histories). The SDK passes each activation to the workflow thread and back three times
  (create the workflow, activate it, collect its sink calls), and the thread serves them in arrival
  order, so the first workflow's last hop waits behind every other one's first. Between waves a slot goes to the next task as
  soon as the agent's process exits, before the attempt's records are written; the next agent still
  starts 40–70 ms later, as the wave before is being recorded on the same 2 cores.
- **Tasks in git worktrees** (\`worktree-20x0.5s-5slots\`, added on 2026-12-06 as the worktree capability's
  benchmark): each task is four activities (prepare the worktree, run the agent, commit, remove) instead
  of one, and the next task's worktree is prepared only once a slot is free, so a slot passes to the next
  agent after a worktree is made (\`git worktree add\` under the repository's lock, shared with the
  removals of the tasks before), a workflow task and the attempt's dispatch: 150–450 ms here, against
  10–40 ms for plain tasks. The stand-in agent is a Node script: its own start-up (40–60 ms) is part of
  its run. On 2026-12-06, in runs taken in turn, fewer git commands per task (21 → 16: no
  \`worktree prune\` after a removal git already unregistered, no removal of a worktree that is not there,
  one \`status\` instead of \`add\` and \`diff\` when nothing is left to commit, a new branch's head taken
  from its base) took the makespan from
  3.90 / 4.43 / 4.14 s to 3.81 / 4.20 / 3.94 s and the agent worker's CPU per task from 57–68 to 49–62 ms.
  Then git went through the spawner helper, as agents do, instead of a fork of the agent worker for each
  of the 16 commands: in runs taken in turn the agent worker's CPU per task fell from 46 to 25 ms, the
  helper's rose from 1 to 11 ms (47 → 36 ms for both), and the makespan stayed within noise
  (3.74–4.00 s before, 3.51–4.29 s after): the four activities and the workflow tasks between them set
  it. Then a worktree's preparation asked git for the task's kept base and branch in one command, which
  also tells a directory that is no repository, and took the repository's lock only for the worktree
  list and \`worktree add\`, not for the task's own refs: 14 git commands per task (5 to prepare, 3 to
  save the work, 5 to commit and diff, 1 to remove), makespan within noise in runs taken in turn
  (3.15–3.34 s before, 3.22–3.60 s after). Preparing the next task's worktree while the slots are still
  busy would take that step off the hand-over, but it binds the task to a worker before that worker has
  a slot for it, while another worker may be idle: for agent runs of minutes it would save about a
  second a task and could cost minutes, so it is not done. On the slower host of the earlier full runs
  the scenario took 6.0–7.8 s, git's 14 processes a task and the stand-in agent's start-up costing more
  there. On 2026-12-07 keeping the agent's work on its task's branch whatever HEAD it left, and its own
  repositories out of the commit, took 4 more git commands a task: 18 (5 to save the work, 7 to commit
  and diff); the full run above, on a slow host, took 8.1–8.5 s.
- **Tried without effect**: eager workflow start (in an experiment, the API ran a workflow worker and
  asked for it: the dev server's CPU stayed the same, the API took over half of the workflow worker's,
  and makespans and throughput stayed within noise); a larger \`GOGC\` for the dev server (200 and 400:
  4% less server CPU for 200 MB more memory, throughput within noise); SQLite \`mmap_size\` and
  \`cache_size\` (64 MiB, with \`temp_store=memory\`), and \`locking_mode=exclusive\`; more non-sticky
  workflow-task pollers (measured again on 2026-12-06, 1:1 sticky and non-sticky, 20 in all, with the
  transfer queue read as often as it had work: 10 × 0.5 s on 5 slots, medians 1.20–1.27 s against
  1.19–1.24 s); fewer workflow-task slots (3 instead of 40: the workflow worker then finishes a
  burst's first workflow tasks one by one instead of all together, which started the fifth task of a
  burst of ten 20–40 ms sooner but cost 7–15% of no-op throughput, as more workflow tasks waited in the
  dev server's backlog; 10 instead of 40, measured again on 2026-12-06 in runs taken in turn: no-op
  throughput 38.7 and 37.7 tasks/s against 44.1 and 46.3, 10 × 0.5 s on 5 slots within noise, every slot
  busy 142 and 156 ms after the first submission against 139 and 168); a second workflow thread
  (measured again on 2026-12-06 in runs taken in turn: 10 × 0.5 s on 5 slots 1.19 and 1.21 s against
  1.26 and 1.23, 6 × 0.5 s on 3 slots 1.15 and 1.16 s against 1.15 and 1.14, no-op throughput 41.6 and
  41.6 tasks/s against 39.8 and 50.8); a larger young generation for the Node processes
  (\`--max-semi-space-size=64\`: 44.5 and 38.0 tasks/s against 45.3 and 44.7 without, in runs taken in
  turn); \`GOMAXPROCS=1\` for the dev server (38.4 and 37.0 tasks/s against 44.2 and 40.8); SQLite
  \`wal_autocheckpoint=10000\` (39.6 and 37.6 tasks/s against 40.0 and 36.2; measured again later that
  day with the server's system calls counted: fsyncs fell from 0.8 to 0.07 per task and reads from the
  WAL by 70%, the cores were 1.5–2 points busier, and throughput, 46.2 / 46.6 / 45.7 against 47.3 /
  44.4 / 39.2 tasks/s, and 10 × 0.5 s on 5 slots stayed within noise: its store writes about 320
  pages a task to the WAL, with two system calls for each); SQLite \`synchronous=off\`, which no power loss
  survives safely (49.2 and 51.8 tasks/s against 51.5 and 53.0); PostgreSQL over its Unix
  socket instead of TCP (20 µs less client CPU per query, 80 against 55–70 µs, and throughput within
  noise: 49.9 and 42.6 tasks/s against 45.0 and 44.5); a larger events cache for the dev server
  (\`history.eventsCacheMaxSizeBytes\` of 64 MiB: its two history reads per task stayed); workflows run on the
  workflow worker's main thread (the SDK's \`debugMode\`, keeping its 5 s deadlock timeout) instead of
  its workflow thread, which saves the three hops per activation between them: 0.6–1 ms less of the
  worker's CPU per task and the burst's first workflow tasks finished one after another instead of
  together, but throughput (45.7 and 43.3 tasks/s against 45.4 and 43.9) and 10 × 0.5 s (1.22–1.26 s
  either way) stayed within noise, not worth running production workflows in a debugging mode; in an
  experiment on a patched SDK, no execution timeout for the workflow sandbox and no stack-trace hook
  on workflow promises: both take CPU, neither changed the workflow task's latency; and each
  workflow started with the \`BuildIds\` search attribute the server would otherwise set when its first workflow
  task completes (\`unversioned\`, the workflow worker declaring no build id): by the server's own
  counters one visibility task and one visibility write less per task, its CPU 19.7 → 18.9 ms per task
  (means of four pairs of runs, within noise), not kept, since the server lists \`BuildIds\` among the
  attributes users may still set only until it refuses them. Measured on the slower host of the later
  session on 2026-12-06, in runs taken in turn: the API's Temporal client over the SDK's native (Rust)
  connection instead of \`@grpc/grpc-js\` (the API's CPU per task 5.0 and 5.3 ms against 4.8 and 4.8);
  13 workflow-task polls with 5 on the task queue, keeping 8 on the sticky queue (10 × 0.5 s on 5 slots
  1.30 / 1.47 / 1.39 s against 1.29 / 1.44 / 1.40), and 20 polls split evenly, which put more workflow
  tasks into the dev server's backlog (1.75 backlog writes per task in \`noop-1000\` against 0.8: the
  sticky queue then has fewer pollers); the API at a lower CPU priority (\`nice\` 5: 1.36 and 1.32 s
  against 1.32 and 1.44 s); and the PostgreSQL pools kept warm (ten connections opened ahead and kept
  for ten minutes): the first round of a burst scenario stayed among its slowest (1.43–1.55 s against
  1.47–1.63 s), so what makes it slow is not the pools' new connections.
- What was fixed on the way: one task-queue partition in the dev server (tasks written to a partition
  without a poller waited up to a second), the success written together with its attempt (no
  bookkeeping activity after the agent ends: the task's end is written 2–20 ms after its agent's),
  a slot handed on when its agent exits, bookkeeping as local activities,
  the benchmark's own warm-up waiting for its task, the gate's common case (an agent without limits,
  its breaker closed, budgets with room) in one statement each way instead of two transactions of 17,
  worker-registry writes shared by the starts and ends of the same half second, statements prepared
  once per connection, agents and git started through the spawner helper, no patch markers in new
  tasks, a task and its run's number read in one statement, the transfer queue read up to 100
  times a second, and the agent's program looked up on \`PATH\` without an exception for each directory
  that does not hold it.

## Environment

\`\`\`json
${JSON.stringify({ machine: env.machine, versions: env.versions, settings: env.settings }, null, 2)}
\`\`\`

## Seeds' figures

${results.scenarios
  .filter((r) => r.scenario.seed)
  .map((r) => `- ${r.scenario.name}: ${r.scenario.seed?.source}`)
  .join('\n')}
`;
}

/** CPU per task of each process in the throughput scenario, where every process is busy throughout. */
function cpuPerTask(results: Results): string {
  const noop = results.scenarios.find((r) => r.scenario.name === 'noop-1000');
  if (!noop) return '`noop-1000` has not run.';
  const rows = noop.usage
    .filter((u) => u.name !== 'up-supervisor')
    .map((u) => `| ${u.name} | ${fmt((1000 * u.cpuSeconds) / noop.metrics.tasks)} |`);
  const m = noop.machine;
  const machineMs = m && (1000 * m.busyCpuSeconds) / noop.metrics.tasks;
  const machineRows = m
    ? [`| whole machine (PostgreSQL, the agents and the kernel included) | ${fmt(machineMs)} |`]
    : [];
  const ceiling = m
    ? [
        '',
        wrap(
          `The machine's ${m.cores} cores were busy ${fmt((100 * m.busyCpuSeconds) / (m.cores * m.elapsedS), 0)}% of ` +
            `the scenario's ${fmt(m.elapsedS)} s (the hypervisor took ${fmt(m.stealCpuSeconds, 2)} CPU s for other ` +
            `guests). At ${fmt(machineMs)} ms of CPU per task, ${m.cores} cores busy all the time would run ` +
            `${fmt((m.cores * noop.metrics.tasks) / m.busyCpuSeconds)} tasks/s: this machine's ceiling for this code.`,
        ),
      ]
    : [];
  return [
    `In \`noop-1000\` (${noop.metrics.tasks} tasks, ${fmt(noop.metrics.throughputPerS)} tasks/s). The process rows leave out PostgreSQL and`,
    'the agent processes themselves; the last row counts everything. `bench-client` is the benchmark itself,',
    'the load generator (REST submissions, PostgreSQL polls), which runs on the same cores.',
    '',
    '| process | CPU ms per task |',
    '|---|---|',
    ...rows,
    ...machineRows,
    ...ceiling,
  ].join('\n');
}

/** The database work per task in the throughput scenario: the Temporal server's store and PostgreSQL. */
function roundTripsPerTask(results: Results): string {
  const noop = results.scenarios.find((r) => r.scenario.name === 'noop-1000');
  const trips = noop?.roundTrips;
  if (!trips) return '`noop-1000` has not run with this measure.';
  const operations = Object.entries(trips.temporalStoreByOperation)
    .map(([operation, perTask]) => `${operation} ${fmt(perTask, 2)}`)
    .join(', ');
  return wrap(
    `In \`noop-1000\`: the Temporal dev server made ${fmt(trips.temporalStorePerTask)} store operations per task ` +
      `in its SQLite database (its \`persistence_requests\` metric: ${operations}), and the service ` +
      `${fmt(trips.postgresTransactionsPerTask)} PostgreSQL transactions per task (\`pg_stat_database\`, ` +
      "the background work of its processes included, the benchmark's own queries left out).",
  );
}

/**
 * For the burst scenarios of short tasks in whole waves: where the time beyond the ideal makespan goes,
 * against what 95% efficiency allows.
 */
function shortTaskBudget(results: Results): string {
  const short = results.scenarios.filter(
    (r) =>
      r.idealMakespanS !== null &&
      r.scenario.seconds < 1 &&
      r.scenario.tasks % r.scenario.slots === 0 &&
      r.scenario.workload !== 'worktree' &&
      r.metrics.allSlotsBusyMs !== undefined &&
      r.metrics.allSlotsBusyMs !== null,
  );
  if (short.length === 0) return 'No scenario of short tasks has run with this report.';
  const steady = results.scenarios.find((r) => r.scenario.name === 'latency-1-per-s');
  const rows = short.map((r) => {
    const m = r.metrics;
    const ideal = 1000 * (r.idealMakespanS as number);
    const waves = Math.ceil(r.scenario.tasks / r.scenario.slots);
    const over = 1000 * m.makespanS - ideal;
    const perRun = m.phasesMs.run.p50 - 1000 * r.scenario.seconds;
    const runs = waves * perRun;
    const start = m.allSlotsBusyMs as number;
    return `| ${r.scenario.name} | ${fmt(over, 0)} | ${waves} × ${fmt(perRun, 0)} = ${fmt(runs, 0)} | ${fmt(start, 0)} | ${fmt(over - runs - start, 0)} | ${fmt(ideal / 0.95 - ideal, 0)} |`;
  });
  return [
    wrap(
      "Milliseconds beyond the ideal makespan, in the median round, and what they went to: the agents' own " +
        "runs beyond their seconds (spawning the process, its start-up and exit, the attempt's records; the " +
        'median run, once per wave), the time from the first submission until every slot had an agent, and the ' +
        "rest (slots handed to the next wave's tasks, the last task's end written). A lone task at idle takes " +
        `${fmt(steady?.metrics.latencyMs.p50, 0)} ms from submission to its agent's start (\`latency-1-per-s\`, p50).`,
    ),
    '',
    '| scenario | beyond ideal | agent runs beyond their seconds | first submission to all slots busy | hand-overs and last write | 95% allows |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** " (median of 3: 44.1–50.2/s)" for a scenario of several rounds. */
function throughputRange(r: ScenarioResult | undefined): string {
  const all = r?.roundMakespansS;
  if (!r || !all || all.length < 2) return '';
  const rates = all.map((s) => r.metrics.tasks / s);
  return ` (median of ${all.length}: ${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}/s)`;
}

function targets(results: Results): string {
  const find = (name: string) => results.scenarios.find((r) => r.scenario.name === name);
  // The issue's parallel scenarios: the worktree one, ours, is reported on its own below.
  const parallel = results.scenarios.filter((r) => r.efficiencyPct !== null && r.scenario.workload !== 'worktree');
  const worktree = results.scenarios.find((r) => r.scenario.workload === 'worktree');
  const worst = parallel.reduce<ScenarioResult | undefined>(
    (w, r) => (w === undefined || (r.efficiencyPct ?? 0) < (w.efficiencyPct ?? 0) ? r : w),
    undefined,
  );
  const seed10 = find('seed-10x0.5s-5slots');
  const noop = find('noop-1000');
  const steady = find('latency-1-per-s');
  const exact = results.scenarios.every((r) => r.allRounds.executions === r.allRounds.tasks);
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'not run' : ok ? 'met' : 'not met');
  return [
    `| efficiency ≥ 95% in every parallel scenario of the issue (the seeds' and 200 × 10 s) | lowest ${fmt(worst?.efficiencyPct)}% (${worst?.scenario.name ?? '–'}): ${verdict(worst && (worst.efficiencyPct ?? 0) >= 95)} |`,
    `| 10 × 0.5 s on 5 slots ≤ 1.2 s (seed 5.15 s) | ${fmt(seed10?.metrics.makespanS, 2)} s: ${verdict(seed10 && seed10.metrics.makespanS <= 1.2)} |`,
    `| no-op throughput ≥ 50 tasks/s | ${fmt(noop?.metrics.throughputPerS)}/s${throughputRange(noop)}: ${verdict(noop && noop.metrics.throughputPerS >= 50)} |`,
    `| p50 ≤ 50 ms, p99 ≤ 200 ms submit-to-start at 1 task/s | ${fmt(steady?.metrics.latencyMs.p50, 0)} / ${fmt(steady?.metrics.latencyMs.p99, 0)} ms: ${verdict(steady && steady.metrics.latencyMs.p50 <= 50 && steady.metrics.latencyMs.p99 <= 200)} |`,
    `| executions = tasks | ${verdict(exact)} in every scenario (the seeds: 1.5–2×) |`,
    `| (no target) tasks in git worktrees, 20 × 0.5 s on 5 slots | ${fmt(worktree?.metrics.makespanS, 2)} s, efficiency ${fmt(worktree?.efficiencyPct)}% |`,
  ].join('\n');
}

/**
 * Merges new results over the stored ones (by scenario name) and rewrites both files. With no new
 * results (\`--report-only\`) the stored ones keep the machine and settings they were measured on.
 */
export async function writeReport(fresh: ScenarioResult[], opts: { quick: boolean }): Promise<void> {
  const previous = readResults();
  const byName = new Map(previous.scenarios.map((s) => [s.scenario.name, s]));
  for (const r of fresh) byName.set(r.scenario.name, r);
  const order = (name: string): number => SCENARIOS.findIndex((s) => s.name === name);
  const scenarios = [...byName.values()].sort((a, b) => order(a.scenario.name) - order(b.scenario.name));
  const results: Results = {
    environment: fresh.length > 0 ? environment(opts.quick) : previous.environment,
    scenarios,
  };
  await writeFormatted(RESULTS_FILE, JSON.stringify(results, null, 2));
  await writeFormatted(REPORT_FILE, markdown(results));
}
