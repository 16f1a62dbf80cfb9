/**
 * Workflow-safe definitions shared by workflows, workers and the API: task queue defaults, the
 * workflow's input and output, failure classes. Nothing here may import Node built-ins.
 */

/** Default task queue names; deployments may override them through the environment. */
export const DEFAULT_TASK_QUEUES = {
  workflows: 'atelier-workflows',
  agents: 'atelier-agents',
} as const;

/** Every way one agent attempt can end; stored on attempts and used as ApplicationFailure types. */
export const FAILURE_CLASSES = {
  succeeded: 'succeeded',
  timeout: 'timeout',
  nonzeroExit: 'nonzero_exit',
  crash: 'crash',
  cancelled: 'cancelled',
  invalidInput: 'invalid_input',
  unknownAgent: 'unknown_agent',
  agentNotFound: 'agent_not_found',
} as const;
export type FailureClass = (typeof FAILURE_CLASSES)[keyof typeof FAILURE_CLASSES];

/** Classes no retry can fix: the workflow stops at once. */
export const NON_RETRYABLE_CLASSES: readonly FailureClass[] = [
  FAILURE_CLASSES.invalidInput,
  FAILURE_CLASSES.unknownAgent,
  FAILURE_CLASSES.agentNotFound,
  FAILURE_CLASSES.cancelled,
];

export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TerminalStatus = Extract<TaskStatus, 'succeeded' | 'failed' | 'cancelled'>;

export const LIMITS = {
  timeoutSeconds: { min: 1, max: 86_400 },
  maxAttempts: { min: 1, max: 20 },
  priority: { min: 1, max: 5 },
} as const;

/**
 * Input of `agentTaskWorkflow`. The prompt is not here: it lives in PostgreSQL and the agent activity
 * reads it by task id, so a 200 KB prompt never enters (and multiplies in) the workflow history.
 */
export interface AgentTaskInput {
  taskId: string;
  agent: string;
  model?: string;
  workdir?: string;
  timeoutSeconds: number;
  maxAttempts: number;
  priority: number;
  /** Queue of the agent workers that run this task's agent activity. */
  agentTaskQueue: string;
  /** First retry delay; doubles per attempt up to `maxBackoffSeconds`. */
  backoffSeconds?: number;
  maxBackoffSeconds?: number;
}

export interface AgentTaskOutput {
  status: 'succeeded';
  attempts: number;
  exitCode: number;
  /** Last bytes of stdout only; the full output is in PostgreSQL. */
  outputTail: string;
}

/** Input of one agent attempt, run by an agent worker. */
export interface RunAgentInput {
  taskId: string;
  attempt: number;
  agent: string;
  model?: string;
  workdir?: string;
  timeoutSeconds: number;
}

export interface RunAgentOutput {
  exitCode: number;
  outputBytes: number;
  outputTail: string;
}

export interface AttemptFailureRecord {
  taskId: string;
  attempt: number;
  agent: string;
  model?: string;
  failureClass: FailureClass;
  message: string;
}

export interface TaskOutcomeRecord {
  taskId: string;
  status: TerminalStatus;
  attempt: number;
  exitCode?: number;
  error?: { class: FailureClass; message: string };
}

/** How long a silent agent worker may go before Temporal declares the attempt lost. */
export const AGENT_HEARTBEAT_TIMEOUT_SECONDS = 10;
/** Room between the agent's own timeout and Temporal's hard limit, for the kill grace and the final write. */
export const AGENT_TIMEOUT_MARGIN_SECONDS = 30;

export const workflowIdForTask = (taskId: string): string => `task-${taskId}`;
