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
 * Waits until every task labelled `run=<label>` has ended, then checks the exactly-once invariants:
 * `expected` tasks, each with one terminal state and one terminal record, and Temporal agreeing with
 * PostgreSQL on every workflow and its outcome.
 */
export async function verifyExactlyOnce(
  env: ChaosEnv,
  label: string,
  expected: number,
  timeoutMs: number,
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

  // Visibility is eventually consistent: wait until Temporal lists every workflow of this run as closed.
  const ids = new Set(tasks.rows.map((t) => t.workflow_id));
  const temporal = new Map<string, string>();
  await waitFor(
    'Temporal visibility to list every workflow as closed',
    async () => {
      temporal.clear();
      for await (const wf of env.temporal.workflow.list({ query: `TaskQueue = '${env.workflowQueue}'` })) {
        if (ids.has(wf.workflowId)) temporal.set(wf.workflowId, wf.status.name);
      }
      return [...temporal.values()].filter((s) => s !== 'RUNNING').length >= ids.size;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const temporalByStatus: Record<string, number> = {};
  for (const s of temporal.values()) temporalByStatus[s] = (temporalByStatus[s] ?? 0) + 1;
  const statusMismatches = tasks.rows.filter((t) => temporal.get(t.workflow_id) !== TEMPORAL_STATUS[t.status]).length;
  const badTerminal = tasks.rows.filter((t) => Number(t.terminals) !== 1).length;

  const problems: string[] = [];
  if (tasks.rows.length !== expected) problems.push(`${tasks.rows.length} tasks in PostgreSQL, expected ${expected}`);
  if (badTerminal > 0) problems.push(`${badTerminal} tasks without exactly one terminal record`);
  if (temporal.size !== expected) problems.push(`${temporal.size} workflows in Temporal, expected ${expected}`);
  if (statusMismatches > 0) problems.push(`${statusMismatches} tasks whose Temporal outcome differs`);
  return {
    tasks: tasks.rows.length,
    byStatus,
    attempts: tasks.rows.reduce((n, t) => n + Number(t.attempts), 0),
    tasksWithoutOneTerminalRecord: badTerminal,
    temporalWorkflows: temporal.size,
    temporalByStatus,
    statusMismatches,
    ok: problems.length === 0,
    problems,
  };
}
