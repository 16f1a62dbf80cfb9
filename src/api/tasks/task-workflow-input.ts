import type { AtelierConfig } from '../../config/env';
import type { NewTask, StoredTaskInputFields } from '../../store/task-store';
import { TASK_CODE_LEVEL, type AgentTaskInput } from '../../../workflows/definitions';
import { locksOfTask } from '../locks/lock-input';

/** What a task's workflow input is made of: the fields of a task as it is stored. */
export type TaskInputFields = Pick<
  NewTask,
  | 'id'
  | 'agent'
  | 'model'
  | 'workdir'
  | 'timeoutSeconds'
  | 'maxAttempts'
  | 'priority'
  | 'agents'
  | 'locks'
  | 'repo'
  | 'failOnLockViolations'
>;

/** The input of a task's workflow, from its fields and the API's settings (a single task or a plan's). */
export function workflowInputFor(t: TaskInputFields, config: AtelierConfig): AgentTaskInput {
  return {
    taskId: t.id,
    agent: t.agent,
    model: t.model,
    workdir: t.workdir,
    timeoutSeconds: t.timeoutSeconds,
    maxAttempts: t.maxAttempts,
    priority: t.priority,
    agentTaskQueue: config.ATELIER_AGENT_QUEUE,
    backoffSeconds: config.ATELIER_RETRY_BACKOFF_SECONDS,
    agents: t.agents,
    waitRecheckSeconds: config.ATELIER_WAIT_RECHECK_SECONDS,
    locks: locksOfTask(t),
    repo: t.repo,
    ...(t.failOnLockViolations && { failOnLockViolations: true }),
    codeLevel: TASK_CODE_LEVEL,
  };
}

/**
 * The input of a task's workflow, from its stored row: what a submission starts, and what a retry
 * starts when the first run's history is gone.
 */
export function taskWorkflowInput(task: StoredTaskInputFields, config: AtelierConfig): AgentTaskInput {
  return workflowInputFor(
    {
      id: task.id,
      agent: task.agent,
      model: task.model ?? undefined,
      workdir: task.workdir ?? undefined,
      timeoutSeconds: task.timeout_seconds,
      maxAttempts: task.max_attempts,
      priority: task.priority,
      agents: task.agents ?? undefined,
      locks: task.locks ?? undefined,
      repo: task.repo_path === null ? undefined : { path: task.repo_path, ref: task.repo_ref ?? undefined },
      failOnLockViolations: task.fail_on_lock_violations,
    },
    config,
  );
}
