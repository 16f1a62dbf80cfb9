import type { AtelierConfig } from '../../config/env';
import type { TaskRow } from '../../store/task-store';
import type { AgentTaskInput } from '../../../workflows/definitions';
import { resolveTaskLocks } from '../locks/lock-input';

/**
 * The input of a task's workflow, from its stored row and the API's settings: what a submission starts,
 * and what a retry starts when the first run's history is gone.
 */
export function taskWorkflowInput(task: TaskRow, config: AtelierConfig): AgentTaskInput {
  return {
    taskId: task.id,
    agent: task.agent,
    model: task.model ?? undefined,
    workdir: task.workdir ?? undefined,
    timeoutSeconds: task.timeout_seconds,
    maxAttempts: task.max_attempts,
    priority: task.priority,
    agentTaskQueue: config.ATELIER_AGENT_QUEUE,
    backoffSeconds: config.ATELIER_RETRY_BACKOFF_SECONDS,
    agents: task.agents ?? undefined,
    waitRecheckSeconds: config.ATELIER_WAIT_RECHECK_SECONDS,
    locks: resolveTaskLocks(task.locks ?? undefined, task.repo_path ?? task.workdir ?? undefined, 'locks').locks,
    repo: task.repo_path === null ? undefined : { path: task.repo_path, ref: task.repo_ref ?? undefined },
    ...(task.fail_on_lock_violations && { failOnLockViolations: true }),
  };
}
