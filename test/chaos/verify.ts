import { waitFor } from '../support/wait-for';
import { query, type ChaosEnv } from './chaos-env';

export interface Verdict {
  tasks: number;
  byStatus: Record<string, number>;
  attempts: number;
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

/**
 * Waits until every task labelled `run=<label>` has ended, then checks the exactly-once invariants:
 * `expected` tasks, each with one terminal state and one terminal record, and Temporal agreeing with
 * PostgreSQL on every workflow and its outcome: every task workflow Temporal started since `since`
 * (the scenario's start) is one of these tasks', and ran once.
 */
export async function verifyExactlyOnce(
  env: ChaosEnv,
  label: string,
  expected: number,
  timeoutMs: number,
  since: Date,
): Promise<Verdict> {
  const labels = { run: label };
  await waitFor(
    `all ${expected} tasks of ${label} to end`,
    async () => {
      const res = await query<{ n: string }>(
        env,
        `SELECT count(*) AS n FROM tasks WHERE labels @> $1 AND status IN ('succeeded', 'failed', 'cancelled')`,
        [labels],
      );
      return Number(res.rows[0]?.n) >= expected;
    },
    { timeoutMs, intervalMs: 250 },
  );
  const tasks = await query<{ workflow_id: string; status: string; terminals: string; attempts: string }>(
    env,
    `SELECT t.workflow_id, t.status,
       (SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.terminal) AS terminals,
       (SELECT count(*) FROM attempts a WHERE a.task_id = t.id) AS attempts
     FROM tasks t WHERE t.labels @> $1`,
    [labels],
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
  if (tasks.rows.length !== expected) problems.push(`${tasks.rows.length} tasks in PostgreSQL, expected ${expected}`);
  if (badTerminal > 0) problems.push(`${badTerminal} tasks without exactly one terminal record`);
  if (runCount !== expected) problems.push(`${runCount} task workflow runs in Temporal, expected ${expected}`);
  if (unknown > 0) problems.push(`${unknown} task workflows in Temporal that no task of this run has`);
  if (rerun > 0) problems.push(`${rerun} task workflows that ran more than once`);
  if (statusMismatches > 0) problems.push(`${statusMismatches} tasks whose Temporal outcome differs`);
  return {
    tasks: tasks.rows.length,
    byStatus,
    attempts: tasks.rows.reduce((n, t) => n + Number(t.attempts), 0),
    tasksWithoutOneTerminalRecord: badTerminal,
    temporalWorkflows: runCount,
    temporalByStatus,
    statusMismatches,
    ok: problems.length === 0,
    problems,
  };
}
