import { dirname, relative, resolve } from 'node:path';
import { ROOT } from '../support/test-env';
import { METHOD, productionSettings } from './environment';
import type { Results, ScenarioResult } from './results';
import { SCENARIOS, WARMUP_BURST } from './scenarios';
import type { WrapperOverhead } from './spawn-log';

const HISTORY_FILE = resolve(ROOT, 'docs/benchmark-history.md');
const NOT_MEASURED = 'not measured in this run';

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

/** The seeds' figures for a scenario: today's list, whatever a stored result's copy of its scenario holds. */
const seedOf = (r: ScenarioResult) => SCENARIOS.find((s) => s.name === r.scenario.name)?.seed ?? r.scenario.seed;

/** Whether a result's agent start is its task's spawn (older results: the attempt's record in PostgreSQL). */
const startsAtSpawn = (r: ScenarioResult): boolean => r.environment.settings.agentStart === METHOD.agentStart;

/** The ways a result was measured otherwise than this code measures (results kept from an older run). */
function methodNotes(r: ScenarioResult): string[] {
  const s = r.environment.settings;
  const notes: string[] = [];
  if (s.timesFrom !== METHOD.timesFrom) notes.push(`timed from ${String(s.timesFrom)}`);
  if (s.services !== METHOD.services) notes.push(`run on ${String(s.services)}`);
  if (!startsAtSpawn(r)) notes.push(`agent start taken as ${String(s.agentStart)}`);
  const settings = productionSettings();
  const own = (s.serviceSettings ?? {}) as Record<string, string>;
  const differ = Object.keys(settings).filter((k) => own[k] !== settings[k]);
  if (differ.length > 0) notes.push(`the service run with ${differ.map((k) => `${k}=${own[k] ?? '?'}`).join(', ')}`);
  return notes;
}

/** Submit to agent start: the seeds' claim time. */
function latencyCell(r: ScenarioResult): string {
  const l = r.metrics.latencyMs;
  const p99 = l.n < 100 ? `${fmt(l.p99, 0)} (max)` : fmt(l.p99, 0);
  const seed = seedOf(r)?.claim;
  return `${fmt(l.p50, 0)} / ${fmt(l.p95, 0)} / ${p99}, n ${l.n}${seed ? ` (seed: ${seed})` : ''}`;
}

function throughputCell(r: ScenarioResult): string {
  const seed = seedOf(r)?.throughputPerS;
  const measured = `${fmt(r.metrics.throughputPerS, 2)}/s${seed ? ` (seed ${seed}/s)` : ''}`;
  const arrival = r.scenario.arrival;
  const rate = arrival.kind === 'rate' ? arrival.perSecond : arrival.kind === 'halfMax' ? r.halfMaxRatePerS : undefined;
  return rate === undefined ? measured : `${measured}: the arrival rate, ${fmt(rate, 2)}/s`;
}

/** Whether each task ran once per attempt opened (once when none failed), from the log's task ids. */
function perTask(r: ScenarioResult): string {
  const e = r.allRounds.executionsByTask;
  if (e === undefined) return 'counted in total only';
  if (e.wrong.length === 0 && e.unfiled === 0) return 'each task once per attempt';
  return `${e.wrong.length} tasks run otherwise, ${e.unfiled} executions of no task`;
}

/** Each task ran once per attempt opened, and no execution was of another task; undefined: not counted by task. */
function exactPerTask(r: ScenarioResult): boolean | undefined {
  const e = r.allRounds.executionsByTask;
  return e && e.wrong.length === 0 && e.unfiled === 0;
}

function row(r: ScenarioResult, note: number | undefined): string {
  const m = r.metrics;
  const seed = seedOf(r);
  const c = r.allRounds;
  const cpu = r.usage
    .map((u) => `${u.name}${u.count === undefined ? '' : ` ×${u.count}`} ${fmt(u.cpuSeconds)} s / ${u.peakRssMb} MB`)
    .join('; ');
  const name = r.halfMaxRatePerS === undefined ? r.scenario.name : `${r.scenario.name} (${fmt(r.halfMaxRatePerS)}/s)`;
  const done = `${c.succeeded}/${c.tasks}${seed?.completionPct ? ` (${fmt((100 * c.succeeded) / c.tasks)}%; seed ${seed.completionPct}%)` : ''}`;
  const executions =
    c.executions === undefined
      ? `${NOT_MEASURED} (${c.attemptRows} attempt records)`
      : `${c.executions}/${c.tasks}${seed?.executionsPerTask ? ` (seed ${seed.executionsPerTask}×)` : ''}, ${perTask(r)}`;
  const peak =
    c.peakAgents === undefined
      ? `${c.sampledPeakAgents ?? '–'}/${r.scenario.slots} (counted every 50 ms)`
      : `${c.peakAgents}/${r.scenario.slots}`;
  return [
    note === undefined ? name : `${name} [${note}]`,
    done,
    `${fmt(m.makespanS, 2)} s${rounds(r)}${seed?.makespanS ? ` (seed ${seed.makespanS} s)` : ''}`,
    r.idealMakespanS === null ? '–' : `${fmt(r.idealMakespanS, 2)} s`,
    r.efficiencyPct === null ? '–' : `${fmt(r.efficiencyPct)}%`,
    r.seedFormulaEfficiencyPct === null
      ? '–'
      : `${fmt(r.seedFormulaEfficiencyPct)}%${seed?.efficiencyPct ? ` (seed ${seed.efficiencyPct}%)` : ''}`,
    throughputCell(r),
    latencyCell(r),
    executions,
    peak,
    cpu,
  ].join(' | ');
}

/** The scenario table, and a note for the results measured otherwise than this code measures (one per way). */
function table(results: Results): string {
  const notes = new Map<string, { number: number; names: string[] }>();
  const rows = results.scenarios.map((r) => {
    const differs = methodNotes(r);
    if (differs.length === 0) return row(r, undefined);
    const text = `measured ${r.ranAt.slice(0, 10)}: ${differs.join('; ')}`;
    const note = notes.get(text) ?? { number: notes.size + 1, names: [] };
    note.names.push(r.scenario.name);
    notes.set(text, note);
    return row(r, note.number);
  });
  const explained = [...notes].map(([text, n]) => `[${n.number}] ${n.names.join(', ')}, ${text}.`);
  return [
    '| scenario | done | makespan | ideal | efficiency | seed formula | throughput | submit to agent start, ms: p50 / p95 / p99 | executions/tasks | peak agents/slots | CPU s / peak RSS |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    ...(explained.length > 0
      ? ['', wrap(`Results kept from an older run, which measured otherwise than this code: ${explained.join(' ')}`)]
      : []),
  ].join('\n');
}

/** The wrapper's cost, as the run that measured it found it (the newest such run). */
function wrapperCost(results: Results): string {
  const measured = results.scenarios
    .filter((r) => r.environment.settings.spawnLogWrapper !== undefined)
    .sort((a, b) => b.ranAt.localeCompare(a.ranAt))[0];
  const w = measured?.environment.settings.spawnLogWrapper as WrapperOverhead | undefined;
  if (!w) return `Its cost per agent is ${NOT_MEASURED}: no result here was measured with it.`;
  return (
    `It costs each agent ${fmt(w.wallMs, 2)} ms of wall time and ${fmt(w.cpuMs, 2)} ms of CPU (measured at the ` +
    `start of the run of ${measured?.ranAt.slice(0, 10)}: \`true\` started ${w.runs} times with it and ${w.runs} ` +
    'without, in turn; a bash start and a fork more), in every agent run timed here.'
  );
}

function header(results: Results, opts: { quick: boolean; reportFile: string }): string {
  const history = relative(dirname(opts.reportFile), HISTORY_FILE);
  const origin = opts.quick
    ? 'Generated by `npm run bench -- --quick`: short versions of the scenarios, not the figures of a full run\n' +
      '(docs/benchmarks.md), kept apart from them, out of git.'
    : 'Generated by `npm run bench` (`--scenario NAME` for one) from `test/bench/results.json`; a `--quick` run\n' +
      '(short versions of the scenarios) writes `test/artifacts/bench-quick/` instead, never these files.';
  return `# Benchmarks${opts.quick ? ' (quick run)' : ''}

${origin}

${wrap(
  'Each scenario runs on a stack of its own: a Temporal dev server with a new SQLite file, a new PostgreSQL ' +
    'database, and the REST API, workflow worker and agent worker started by `up` as `npm run up` starts them, ' +
    "with production's defaults for the recovery sweeps (stranded tasks, closed runs), the retry backoff and the " +
    "shutdown grace (the test suite's stack turns the sweeps nearly off), on ports and task queues of its own. " +
    'The agents are real child processes (`sleep`, `true`; in `worktree-20x0.5s-5slots` the stand-in agent, a ' +
    "Node script, which writes a file in the task's git worktree and sleeps), each run by " +
    "`test/bench/spawn-log.sh`, a bash script that appends the agent's start (its pid, the time to the " +
    'microsecond, and the task and attempt the worker gives each agent, `ATELIER_TASK_ID` and `ATELIER_ATTEMPT`) ' +
    "and exit to a log of the benchmark's and runs the agent's program with its arguments as given: executions " +
    "(each task's), agents at once and agents' starts are taken from that log, not from the service's own records. " +
    wrapperCost(results),
)}

${wrap(
  "Times: a task's submission is the benchmark's client sending it; its agent's start is the spawn the log " +
    "files under its attempt 1 (results of before the log had task ids, marked in the table: the attempt's " +
    'record in PostgreSQL, opened just before the spawn; the gap from record to spawn is shown below); its end is ' +
    "the task's terminal write (for a worktree task, once its work is committed on its branch). Before its rounds, " +
    `each scenario's stack is warmed, unmeasured: one task of the scenario's workload, then ${WARMUP_BURST} no-op ` +
    'tasks at once, so that the rounds measure the service as it runs once it has been up a while.',
)}

- **Ideal makespan**: ceil(tasks / slots) × task duration, what a perfect scheduler reaches.
  **Efficiency** = ideal / actual. **Seed formula** = tasks × duration / (slots × actual), the formula the
  seeds' 39.6% figure uses, for a like-for-like comparison.
- **Done**: tasks succeeded over every round (the seeds' stress test completed 98.4%).
- **Throughput**: tasks / makespan. For a scenario submitted at a steady rate it is that rate, not
  what the service could do: marked with the arrival rate.
- **Submit to agent start** (the seeds' claim time): from the client's send to the spawn of the task's
  attempt 1, p50 / p95 / p99 in ms over the tasks of every round, and their number n; with fewer than
  100 tasks the p99 is the slowest of them.
- **Executions/tasks**: agent executions in the spawn log, from the first round's first send until the
  stack stopped, against the tasks submitted, and counted by task: each task must have run once per
  attempt opened, once in all when none of its attempts failed, and no execution may be of another task
  (the seeds ran tasks 1.5–2× each). Counted by task, one task run twice is found even where another ran
  not at all, which a total hides; results of before the log had task ids were counted in total only. An
  attempt's record in PostgreSQL cannot show this: an attempt started twice keeps one record.
- **Peak agents/slots**: most agents alive at once in any round, from the log's starts and exits
  (exact, where counting processes every 50 ms could miss one), against the agent worker's slots. An
  attempt's record closes a few ms after its agent exits, while the slot has gone to the next agent,
  so attempts open at once may pass the slots by one (\`peakOpenAttempts\` in the results); agents do
  not. \`npm run bench\` exits with an error when a scenario has a task run otherwise than once per
  attempt (once when none failed), an execution of no task of its rounds, an execution with no exit
  logged (an agent killed), a task that did not succeed, or more agents at once than slots.
- **Rounds**: the seconds-long seed scenarios run 5 times in a row on the same stack (the worktree
  scenario and \`noop-1000\` 3 times); the makespan, efficiency and throughput are the median round's
  (by makespan), with the range of all of them.
- **latency-half-max** runs at half the no-op throughput measured before it in the same run (asked
  for alone, \`noop-1000\` runs first), the rate in its name.
- **CPU / memory**: CPU seconds used during the scenario (per round) and peak RSS of each process: the
  dev server, \`up\`, the API, the workers, the spawner helper, the benchmark's own client, and the
  PostgreSQL backends serving the scenario's database, together (\`postgres-backends ×n\`, their number:
  their CPU, and their private memory at its peak, since each one's RSS counts the shared buffers it
  touched; not measured when PostgreSQL runs in a container, whose pids are not this machine's). Not
  measured process by process: PostgreSQL's own background processes and the agents themselves; the
  whole machine's CPU below counts them.
- **What limits the numbers**: profiled in earlier sessions, with dates: [${history}](${history}).`;
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
    ? [`| whole machine (all of PostgreSQL, the agents and the kernel included) | ${fmt(machineMs)} |`]
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
  const postgres = noop.usage.some((u) => u.name === 'postgres-backends')
    ? "PostgreSQL's own background processes"
    : 'PostgreSQL';
  return [
    wrap(
      `In \`noop-1000\` (${noop.metrics.tasks} tasks, ${fmt(noop.metrics.throughputPerS)} tasks/s). The process rows ` +
        `leave out ${postgres} and the agent processes themselves; the last row counts everything. \`bench-client\` ` +
        'is the benchmark itself, the load generator (REST submissions, PostgreSQL polls), which runs on the same cores.',
    ),
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
        "runs beyond their seconds (the median run, once per wave: from the spawn log, the process's start-up " +
        "and exit and the wrapper's own; in results from before the log, the attempt's record, spawn included), " +
        'the time from the first send until every slot had an agent, and the rest (slots handed to the next ' +
        "wave's tasks, the last task's end written). A lone task at idle takes " +
        `${fmt(steady?.metrics.latencyMs.p50, 0)} ms from its send to its agent's start (\`latency-1-per-s\`, p50).`,
    ),
    '',
    '| scenario | beyond ideal | agent runs beyond their seconds | first send to all slots busy | hand-overs and last write | 95% allows |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** The gap between an attempt's record and its agent's spawn, paired by the task id and attempt the log files the spawn under. */
function recordToSpawn(results: Results): string {
  const rows = results.scenarios.map((r) => {
    const g = r.metrics.recordToSpawnMs;
    const paired = startsAtSpawn(r) ? '' : ' (only where tasks did not overlap)';
    return g === undefined
      ? `| ${r.scenario.name} | ${NOT_MEASURED} | | |`
      : `| ${r.scenario.name} | ${g.n}${paired} | ${fmt(g.p50)} | ${fmt(g.max)} |`;
  });
  return [
    wrap(
      "The service opens an attempt's record in PostgreSQL just before it spawns the attempt's agent: the gap, " +
        'over every attempt, each paired with the first spawn the log files under its task and attempt. Results ' +
        'of before the log had task ids paired an attempt with the one spawn its open record held, when no other ' +
        "attempt's record held that spawn: tasks that did not overlap (all of them at 1 task/s, few in a burst); " +
        'their agent start above is the record, which the spawn follows by this gap.',
    ),
    '',
    '| scenario | pairs | p50 ms | max ms |',
    '|---|---|---|---|',
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
  const verdict = (ok: boolean | undefined): string => (ok === undefined ? 'not run' : ok ? 'met' : 'not met');
  const counted = results.scenarios.filter((r) => r.allRounds.executions !== undefined);
  const byTask = counted.filter((r) => exactPerTask(r) !== undefined).length;
  const exact =
    counted.length === 0
      ? NOT_MEASURED
      : `${verdict(counted.every((r) => exactPerTask(r) ?? r.allRounds.executions === r.allRounds.tasks))} in ` +
        `${counted.length} of ${results.scenarios.length} scenarios, by task in ${byTask}` +
        `${byTask < counted.length ? ` (the others: in total only)` : ''}` +
        `${counted.length < results.scenarios.length ? ` (the others: ${NOT_MEASURED})` : ''}`;
  const steadyStart = steady && !startsAtSpawn(steady) ? ", measured to the attempt's record, before the spawn" : '';
  return [
    '| target | measured |',
    '|---|---|',
    `| efficiency ≥ 95% in every parallel scenario of the issue (the seeds' and 200 × 10 s) | lowest ${fmt(worst?.efficiencyPct)}% (${worst?.scenario.name ?? '–'}): ${verdict(worst && (worst.efficiencyPct ?? 0) >= 95)} |`,
    `| 10 × 0.5 s on 5 slots ≤ 1.2 s (seed 5.15 s) | ${fmt(seed10?.metrics.makespanS, 2)} s: ${verdict(seed10 && seed10.metrics.makespanS <= 1.2)} |`,
    `| no-op throughput ≥ 50 tasks/s | ${fmt(noop?.metrics.throughputPerS)}/s${throughputRange(noop)}: ${verdict(noop && noop.metrics.throughputPerS >= 50)} |`,
    `| p50 ≤ 50 ms, p99 ≤ 200 ms submit-to-start at 1 task/s (to the agent's spawn) | ${fmt(steady?.metrics.latencyMs.p50, 0)} / ${fmt(steady?.metrics.latencyMs.p99, 0)} ms${steadyStart}: ${verdict(steady && steady.metrics.latencyMs.p50 <= 50 && steady.metrics.latencyMs.p99 <= 200)} |`,
    `| each task run once per attempt, once when none failed (the seeds: 1.5–2×), from the spawn log | ${exact} |`,
    `| (no target) tasks in git worktrees, 20 × 0.5 s on 5 slots | ${fmt(worktree?.metrics.makespanS, 2)} s, efficiency ${fmt(worktree?.efficiencyPct)}% |`,
  ].join('\n');
}

/** Each environment the results were measured in, with the scenarios measured in it. */
function environments(results: Results): string {
  const groups = new Map<string, string[]>();
  for (const r of results.scenarios) {
    const key = JSON.stringify(r.environment, null, 2);
    groups.set(key, [...(groups.get(key) ?? []), `\`${r.scenario.name}\` (${r.ranAt})`]);
  }
  return [...groups]
    .map(([env, names]) => `${wrap(`${names.join(', ')}:`)}\n\n\`\`\`json\n${env}\n\`\`\``)
    .join('\n\n');
}

export function markdown(results: Results, opts: { quick: boolean; reportFile: string }): string {
  return `${header(results, opts)}

${table(results)}

## Targets

${targets(results)}

## CPU per task

${cpuPerTask(results)}

## Database round trips per task

${roundTripsPerTask(results)}

## Short tasks: the time beyond the ideal

${shortTaskBudget(results)}

## From the attempt's record to the agent's spawn

${recordToSpawn(results)}

## Environment

${environments(results)}

## Seeds' figures

${results.scenarios
  .filter((r) => seedOf(r))
  .map((r) => `- ${r.scenario.name}: ${seedOf(r)?.source}`)
  .join('\n')}
`;
}
