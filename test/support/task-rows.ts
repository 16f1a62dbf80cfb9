import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { NewTask } from '../../src/store/task-store';
import { workflowIdForTask } from '../../workflows/definitions';

export interface TaskRowFields {
  prompt: string;
  agent?: string;
  model?: string;
  workdir?: string;
  timeoutSeconds?: number;
  maxAttempts?: number;
  priority?: number;
  /** The task's cost cap; 0 holds its attempts back (`task_budget`) until it is raised. */
  budgetUsd?: number;
}

/** Inserts a queued task row, as the API would before starting its workflow; returns the task id. */
export async function insertTask(pool: Pool, fields: TaskRowFields): Promise<string> {
  const id = randomUUID();
  await pool.query(
    `INSERT INTO tasks (id, status, prompt, agent, model, workdir, timeout_seconds, max_attempts, priority, workflow_id,
       budget_usd)
     VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      id,
      fields.prompt,
      fields.agent ?? 'stand-in',
      fields.model ?? null,
      fields.workdir ?? null,
      fields.timeoutSeconds ?? 30,
      fields.maxAttempts ?? 1,
      fields.priority ?? 3,
      workflowIdForTask(id),
      fields.budgetUsd ?? null,
    ],
  );
  return id;
}

/** A new task as POST /v1/tasks stores it (TaskStore.create) before starting its workflow: the stand-in agent. */
export function newTask(prompt: string): NewTask {
  const id = randomUUID();
  return {
    id,
    prompt,
    agent: 'stand-in',
    timeoutSeconds: 60,
    maxAttempts: 1,
    priority: 3,
    labels: {},
    workflowId: workflowIdForTask(id),
  };
}

export interface TaskRow {
  status: string;
  result_attempt: number | null;
  result_exit_code: number | null;
  error_class: string | null;
  error_message: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface AttemptRow {
  number: number;
  agent: string;
  worker: string | null;
  started_at: Date;
  finished_at: Date | null;
  exit_code: number | null;
  failure_class: string | null;
  error: string | null;
  output_bytes: string;
  output: string | null;
}

export interface EventRow {
  kind: string;
  attempt: number;
  terminal: boolean;
}

export async function taskRow(pool: Pool, taskId: string): Promise<TaskRow> {
  const res = await pool.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [taskId]);
  if (!res.rows[0]) throw new Error(`task ${taskId} is not in the database`);
  return res.rows[0];
}

/** The task's attempts, first attempt first. */
export async function attemptRows(pool: Pool, taskId: string): Promise<AttemptRow[]> {
  const res = await pool.query<AttemptRow>('SELECT * FROM attempts WHERE task_id = $1 ORDER BY number', [taskId]);
  return res.rows;
}

export async function eventRows(pool: Pool, taskId: string): Promise<EventRow[]> {
  const res = await pool.query<EventRow>(
    'SELECT kind, attempt, terminal FROM task_events WHERE task_id = $1 ORDER BY id',
    [taskId],
  );
  return res.rows;
}

/** The task's terminal events, one per run that ended, first run first. */
export async function terminalEvents(pool: Pool, taskId: string): Promise<{ run: number; kind: string }[]> {
  const res = await pool.query<{ run: number; kind: string }>(
    'SELECT run, kind FROM task_events WHERE task_id = $1 AND terminal ORDER BY run',
    [taskId],
  );
  return res.rows;
}

/** The output an attempt stored in task_logs, one string per stream, in sequence order. */
export async function storedLogs(
  pool: Pool,
  taskId: string,
  attempt: number,
): Promise<{ stdout: string; stderr: string }> {
  const res = await pool.query<{ stream: 'stdout' | 'stderr'; data: string }>(
    'SELECT stream, data FROM task_logs WHERE task_id = $1 AND attempt = $2 ORDER BY seq',
    [taskId, attempt],
  );
  const logs = { stdout: '', stderr: '' };
  for (const row of res.rows) logs[row.stream] += row.data;
  return logs;
}
