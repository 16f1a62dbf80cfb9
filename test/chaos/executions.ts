import { existsSync, readFileSync } from 'node:fs';

/** One run of the stand-in agent, as it logged itself (test/agents/stand-in-agent.mjs, STAND_IN_SPAWN_LOG). */
export interface Execution {
  pid: number;
  /** When the process started, in ms since the epoch. */
  startedAt: number;
  /** The prompt as it reached the agent. */
  prompt: string;
  /** The task and attempt number (in its run) the worker gave the agent (ATELIER_TASK_ID, ATELIER_ATTEMPT). */
  taskId?: string;
  attempt?: number;
}

/** The agent runs logged in `file` that started at `since` (ms since the epoch) or later. */
export function executionsSince(file: string, since: number): Execution[] {
  if (!existsSync(file)) return []; // no agent has run
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Execution)
    .filter((e) => e.startedAt >= since);
}

/** An agent worker a scenario killed (SIGKILL), and when (ms since the epoch, just before the kill). */
export interface AgentWorkerKill {
  pid: number;
  at: number;
}

/** An attempt row, its times in ms since the epoch. */
export interface AttemptRow {
  taskId: string;
  run: number;
  number: number;
  /** The identity of the worker that opened it; null: no worker did, the workflow recorded it lost. */
  worker: string | null;
  startedMs: number;
  finishedMs: number | null;
}

export interface TaskRow {
  id: string;
  prompt: string;
  /** The attempt whose success ended the task (run and number), if it succeeded. */
  result: { run: number; number: number } | null;
}

export interface ExecutionCount {
  /** Agent runs of these tasks. */
  executions: number;
  /** Attempts lost with a killed agent worker: the only ones that may leave another behind them. */
  lostWithKilledWorker: number;
  problems: string[];
}

/**
 * Whether attempt `a` was lost with a killed agent worker: opened by it and not closed by the kill (the
 * worker records its identity, `agent-worker:<pid>-…`, when it opens the attempt, before it starts
 * the agent); or opened by no worker and closed after a kill (the killed worker had taken it but died
 * before opening it, and the workflow recorded it lost once its heartbeat timed out).
 */
const lostWith = (a: AttemptRow, kills: AgentWorkerKill[]): boolean =>
  kills.some((k) =>
    a.worker === null
      ? a.finishedMs !== null && a.finishedMs > k.at
      : a.worker.startsWith(`agent-worker:${k.pid}-`) && (a.finishedMs === null || a.finishedMs > k.at),
  );

/**
 * Counts the agent's executions of each task from the agent's own log, independently of the attempt
 * rows (a repeated start of an attempt updates its row, and would leave one row for two runs), and
 * checks them against the attempts:
 * - every execution since the scenario began has the prompt of a task (`knownPrompts`, every task's in
 *   the database): the prompt arrived byte for byte, and no agent ran that no task asked for;
 * - each execution of a task falls in one of its attempts, between the attempt's start (written before
 *   the agent is started) and its end (after the agent exited): an agent run outside them ran while
 *   no attempt of its task was open (an attempt's start repeated moves the start past the first run);
 *   and the task id and attempt number the worker gave the agent are that task's and that attempt's;
 * - each attempt opened by a worker has exactly one execution; one lost with a killed agent worker at
 *   most one (its agent may have died with the worker before it got to log its start); one no worker
 *   opened, none;
 * - a task's attempts other than the one that succeeded were each lost with a killed agent worker.
 * So a task no kill touched ran once, and one with K attempts lost to kills at most 1 + K times.
 */
export function countExecutions(
  tasks: TaskRow[],
  attempts: AttemptRow[],
  executions: Execution[],
  knownPrompts: Set<string>,
  kills: AgentWorkerKill[],
): ExecutionCount {
  const byPrompt = new Map(tasks.map((t) => [t.prompt, t]));
  if (byPrompt.size !== tasks.length) throw new Error('the tasks of a chaos run must each have a prompt of its own');
  const runsOf = new Map<string, Execution[]>();
  for (const e of executions) {
    const task = byPrompt.get(e.prompt);
    if (task) runsOf.set(task.id, [...(runsOf.get(task.id) ?? []), e]);
  }
  const strays = executions.filter((e) => !knownPrompts.has(e.prompt)).length;
  let outside = 0;
  let misnamed = 0;
  let miscounted = 0;
  let unexplained = 0;
  let lost = 0;
  for (const task of tasks) {
    const own = attempts.filter((a) => a.taskId === task.id);
    const counts = new Map<AttemptRow, number>(own.map((a) => [a, 0]));
    for (const e of runsOf.get(task.id) ?? []) {
      // The latest attempt open when it started: a lost attempt's end is written late (or never), and
      // must not take the run of the attempt that followed it.
      const within = own
        .filter((a) => a.startedMs <= e.startedAt && e.startedAt <= (a.finishedMs ?? Infinity))
        .reduce<AttemptRow | undefined>(
          (latest, a) => (latest && latest.startedMs >= a.startedMs ? latest : a),
          undefined,
        );
      if (!within) {
        outside++;
        continue;
      }
      counts.set(within, (counts.get(within) ?? 0) + 1);
      if (e.taskId !== task.id || e.attempt !== within.number) misnamed++;
    }
    for (const [a, n] of counts) {
      const lostHere = lostWith(a, kills);
      if (lostHere) lost++;
      const allowed = a.worker === null ? n === 0 : lostHere ? n <= 1 : n === 1;
      if (!allowed) miscounted++;
      const succeeded = task.result !== null && task.result.run === a.run && task.result.number === a.number;
      if (!succeeded && !lostHere) unexplained++;
    }
  }
  const problems: string[] = [];
  if (strays > 0) {
    problems.push(`${strays} agent executions with a prompt no task has (altered on its way, or no task asked for it)`);
  }
  if (outside > 0) problems.push(`${outside} agent executions while no attempt of their task was open`);
  if (misnamed > 0) {
    problems.push(`${misnamed} agent executions told another task id or attempt than the attempt they ran in`);
  }
  if (miscounted > 0) problems.push(`${miscounted} attempts without exactly the agent executions they allow`);
  if (unexplained > 0) {
    problems.push(`${unexplained} attempts that neither succeeded nor were lost with a killed agent worker`);
  }
  return {
    executions: [...runsOf.values()].reduce((n, runs) => n + runs.length, 0),
    lostWithKilledWorker: lost,
    problems,
  };
}
