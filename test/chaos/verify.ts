import { waitFor } from '../support/wait-for';
import { query, type ChaosEnv } from './chaos-env';
import { countExecutions, executionsSince, type AgentWorkerKill } from './executions';

export interface Verdict {
  tasks: number;
  byStatus: Record<string, number>;
  attempts: number;
  /** Runs of the agent for these tasks, as the agent logged them (not as attempt rows say). */
  agentExecutions: number;
  /** Attempts lost with an agent worker the scenario killed: each may leave one attempt more. */
  attemptsLostWithKilledWorker: number;
  tasksWithoutOneTerminalRecord: number;
  temporalWorkflows: number;
  temporalByStatus: Record<string, number>;
  statusMismatches: number;
  ok: boolean;
  problems: string[];
}

const TEMPORAL_STATUS: Record<string, string> = {
  succeeded: 'COMPLETED',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
};

/**
 * The runs of workflows of these types (task workflows by default) Temporal started on the
 * environment's workflow queue since `since`, by workflow id: every one, whether or not PostgreSQL
 * knows its task.
 */
export async function runsInTemporal(
  env: ChaosEnv,
  since: Date,
  types: string[] = ['agentTaskWorkflow'],
): Promise<Map<string, string[]>> {
  const runs = new Map<string, string[]>();
  const query =
    `TaskQueue = '${env.workflowQueue}' AND WorkflowType IN (${types.map((t) => `'${t}'`).join(', ')})` +
    ` AND StartTime >= '${since.toISOString()}'`;
  for await (const wf of env.temporal.workflow.list({ query })) {
    runs.set(wf.workflowId, [...(runs.get(wf.workflowId) ?? []), wf.status.name]);
  }
  return runs;
}

export interface Expected {
  /** The tasks' `run` label. */
  label: string;
  /** How many tasks have it. */
  tasks: number;
  timeoutMs: number;
  /** When the scenario began. */
  since: Date;
  /** The agent workers the scenario killed, if any. */
  agentWorkerKills?: AgentWorkerKill[];
}

/**
 * Waits until every task labelled `run=<label>` has ended, then checks the exactly-once invariants:
 * the expected number of tasks, each succeeded, with one terminal state and one terminal record; the
 * agent run once per attempt, and once per task but where an attempt was lost with a killed agent
 * worker (countExecutions); and Temporal agreeing with PostgreSQL on every workflow and its outcome:
 * every task workflow Temporal started since the scenario began is one of these tasks', and ran once.
 */
export async function verifyExactlyOnce(env: ChaosEnv, expected: Expected): Promise<Verdict> {
  const { label, tasks: n, timeoutMs, since } = expected;
  const labels = { run: label };
  await waitFor(
    `all ${n} tasks of ${label} to end`,
    async () => {
      const res = await query<{ n: string }>(
        env,
        `SELECT count(*) AS n FROM tasks WHERE labels @> $1 AND status IN ('succeeded', 'failed', 'cancelled')`,
        [labels],
      );
      return Number(res.rows[0]?.n) >= n;
    },
    { timeoutMs, intervalMs: 250 },
  );
  const tasks = await query<{
    id: string;
    workflow_id: string;
    status: string;
    prompt: string;
    current_run: number;
    result_attempt: number | null;
    terminals: string;
  }>(
    env,
    `SELECT t.id, t.workflow_id, t.status, t.prompt, t.current_run, t.result_attempt,
       (SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.terminal) AS terminals
     FROM tasks t WHERE t.labels @> $1`,
    [labels],
  );
  const attempts = await query<{
    task_id: string;
    run: number;
    number: number;
    worker: string | null;
    started_ms: string;
    finished_ms: string | null;
  }>(
    env,
    `SELECT a.task_id, a.run, a.number, a.worker, extract(epoch FROM a.started_at) * 1000 AS started_ms,
       extract(epoch FROM a.finished_at) * 1000 AS finished_ms
     FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.labels @> $1`,
    [labels],
  );
  const prompts = await query<{ prompt: string }>(env, 'SELECT DISTINCT prompt FROM tasks');
  const counted = countExecutions(
    tasks.rows.map((t) => ({
      id: t.id,
      prompt: t.prompt,
      result:
        t.status === 'succeeded' && t.result_attempt !== null ? { run: t.current_run, number: t.result_attempt } : null,
    })),
    attempts.rows.map((a) => ({
      taskId: a.task_id,
      run: a.run,
      number: a.number,
      worker: a.worker,
      startedMs: Number(a.started_ms),
      finishedMs: a.finished_ms === null ? null : Number(a.finished_ms),
    })),
    executionsSince(env.spawnLog, since.getTime()),
    new Set(prompts.rows.map((p) => p.prompt)),
    expected.agentWorkerKills ?? [],
  );
  const byStatus: Record<string, number> = {};
  for (const t of tasks.rows) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;

  // Visibility is eventually consistent: wait until Temporal lists every task's workflow as closed.
  const ids = new Set(tasks.rows.map((t) => t.workflow_id));
  let runs = new Map<string, string[]>();
  await waitFor(
    'Temporal visibility to list every workflow as closed',
    async () => {
      runs = await runsInTemporal(env, since);
      return [...ids].every((id) => runs.get(id)?.every((s) => s !== 'RUNNING'));
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const temporalByStatus: Record<string, number> = {};
  for (const statuses of runs.values()) for (const s of statuses) temporalByStatus[s] = (temporalByStatus[s] ?? 0) + 1;
  const runCount = [...runs.values()].reduce((n, statuses) => n + statuses.length, 0);
  const unknown = [...runs.keys()].filter((id) => !ids.has(id)).length;
  const rerun = [...runs.values()].filter((statuses) => statuses.length > 1).length;
  const statusMismatches = tasks.rows.filter((t) => runs.get(t.workflow_id)?.[0] !== TEMPORAL_STATUS[t.status]).length;
  const badTerminal = tasks.rows.filter((t) => Number(t.terminals) !== 1).length;

  const problems: string[] = [];
  if (tasks.rows.length !== n) problems.push(`${tasks.rows.length} tasks in PostgreSQL, expected ${n}`);
  if (byStatus.succeeded !== n) problems.push(`${byStatus.succeeded ?? 0} of ${n} tasks succeeded`);
  if (badTerminal > 0) problems.push(`${badTerminal} tasks without exactly one terminal record`);
  if (runCount !== n) problems.push(`${runCount} task workflow runs in Temporal, expected ${n}`);
  if (unknown > 0) problems.push(`${unknown} task workflows in Temporal that no task of this run has`);
  if (rerun > 0) problems.push(`${rerun} task workflows that ran more than once`);
  if (statusMismatches > 0) problems.push(`${statusMismatches} tasks whose Temporal outcome differs`);
  problems.push(...counted.problems);
  return {
    tasks: tasks.rows.length,
    byStatus,
    attempts: attempts.rows.length,
    agentExecutions: counted.executions,
    attemptsLostWithKilledWorker: counted.lostWithKilledWorker,
    tasksWithoutOneTerminalRecord: badTerminal,
    temporalWorkflows: runCount,
    temporalByStatus,
    statusMismatches,
    ok: problems.length === 0,
    problems,
  };
}
