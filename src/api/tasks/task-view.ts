import type { AttemptRow, TaskRow, TaskSummaryRow } from '../../store/task-store';
import type { RunView } from '../runs/run-view';

export interface TaskLinks {
  self: string;
  logs: string;
  temporalUi: string;
}

/**
 * The task's links. Its Temporal Web UI link opens the history of its run, or, before a run is recorded,
 * the workflow's page, which opens its latest run: the Web UI has workflows/<id>/<run>/history and
 * workflows/<id>, but no workflows/<id>/history.
 */
export const taskLinks = (
  task: Pick<TaskRow, 'id' | 'workflow_id' | 'run_id'>,
  uiBase: string,
  namespace: string,
): TaskLinks => ({
  self: `/v1/tasks/${task.id}`,
  logs: `/v1/tasks/${task.id}/logs`,
  temporalUi: `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(task.workflow_id)}${
    task.run_id ? `/${task.run_id}/history` : ''
  }`,
});

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
/** PostgreSQL numeric and bigint arrive as text; JSON gets numbers (or null when unknown). */
const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

/** The summary used in lists. */
export const taskSummary = (task: TaskSummaryRow, links: TaskLinks) => ({
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
  /** The fallback chain, head first. */
  agents: task.agents ?? [task.agent],
  /** While `queued` because its chain is held back (breaker open, limits, budget): why, and until when. */
  waitingReason: task.status === 'queued' ? task.waiting_reason : null,
  links,
});

/** The full task, as `GET /v1/tasks/:id` returns it. */
export const taskDetail = (
  task: TaskRow,
  attempts: AttemptRow[],
  output: string | null,
  links: TaskLinks,
  runs: RunView[] = [],
) => ({
  ...taskSummary(task, links),
  prompt: task.prompt,
  workdir: task.workdir,
  timeoutSeconds: task.timeout_seconds,
  maxAttempts: task.max_attempts,
  workflowId: task.workflow_id,
  runId: task.run_id,
  budgetUsd: num(task.budget_usd),
  costUsd: num(task.cost_usd),
  /** Declared file locks (globs relative to the task's repository). */
  locks: task.locks ?? [],
  /** Whether a change outside `locks` fails the task. */
  failOnLockViolations: task.fail_on_lock_violations,
  /** The git repository the task works on in its own worktree, and what it committed there. */
  repo: task.repo_path === null ? null : { path: task.repo_path, ref: task.repo_ref },
  commit:
    task.commit_sha === null
      ? null
      : {
          branch: task.branch,
          baseSha: task.base_sha,
          sha: task.commit_sha,
          changedFiles: task.changed_files ?? [],
          diffstat: task.diffstat,
          lockViolations: task.lock_violations ?? [],
          diff: `/v1/tasks/${task.id}/diff`,
        },
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
    costUsd: num(a.cost_usd ?? null),
    inputTokens: num(a.input_tokens ?? null),
    cachedInputTokens: num(a.cached_input_tokens ?? null),
    outputTokens: num(a.output_tokens ?? null),
    turns: a.turns ?? null,
    sessionId: a.session_id ?? null,
    resetAt: iso(a.reset_at ?? null),
  })),
  runs,
  result: task.status === 'succeeded' ? taskResult(task, attempts, output) : null,
});

/** The successful attempt's answer (its parsed final text, else its stdout), and which agent gave it at what cost. */
function taskResult(task: TaskRow, attempts: AttemptRow[], output: string | null) {
  const by = attempts.find((a) => a.number === task.result_attempt);
  return {
    output: output ?? '',
    exitCode: task.result_exit_code,
    agent: by?.agent ?? task.agent,
    costUsd: num(by?.cost_usd ?? null),
    inputTokens: num(by?.input_tokens ?? null),
    cachedInputTokens: num(by?.cached_input_tokens ?? null),
    outputTokens: num(by?.output_tokens ?? null),
    turns: by?.turns ?? null,
    sessionId: by?.session_id ?? null,
  };
}
