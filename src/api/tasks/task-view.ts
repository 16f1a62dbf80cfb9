import type { AttemptRow, TaskRow } from '../../store/task-store';

export interface TaskLinks {
  self: string;
  logs: string;
  temporalUi: string;
}

export const taskLinks = (
  task: Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>,
  uiBase: string,
  namespace: string,
): TaskLinks => ({
  self: `/v1/tasks/${task.id}`,
  logs: `/v1/tasks/${task.id}/logs`,
  temporalUi: `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(task.workflow_id)}${
    task.run_id ? `/${task.run_id}` : ''
  }/history`,
});

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** The summary used in lists. */
export const taskSummary = (task: TaskRow, links: TaskLinks) => ({
  id: task.id,
  status: task.status,
  agent: task.agent,
  model: task.model,
  priority: task.priority,
  labels: task.labels,
  createdAt: iso(task.created_at),
  startedAt: iso(task.started_at),
  finishedAt: iso(task.finished_at),
  error: task.error_class ? { class: task.error_class, message: task.error_message } : null,
  links,
});

/** The full task, as `GET /v1/tasks/:id` returns it. */
export const taskDetail = (task: TaskRow, attempts: AttemptRow[], output: string | null, links: TaskLinks) => ({
  ...taskSummary(task, links),
  prompt: task.prompt,
  workdir: task.workdir,
  timeoutSeconds: task.timeout_seconds,
  maxAttempts: task.max_attempts,
  workflowId: task.workflow_id,
  runId: task.run_id,
  attempts: attempts.map((a) => ({
    number: a.number,
    agent: a.agent,
    model: a.model,
    worker: a.worker,
    startedAt: iso(a.started_at),
    finishedAt: iso(a.finished_at),
    exitCode: a.exit_code,
    failureClass: a.failure_class,
    error: a.error,
    outputBytes: Number(a.output_bytes),
  })),
  result: task.status === 'succeeded' ? { output: output ?? '', exitCode: task.result_exit_code } : null,
});
