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
  rateLimited: 'rate_limited',
  overloaded: 'overloaded',
  auth: 'auth',
  contextOverflow: 'context_overflow',
  maxTurns: 'max_turns',
  stalled: 'stalled',
  badOutput: 'bad_output',
  /** The task changed files outside its declared locks, and was told to fail on that. */
  lockViolation: 'lock_violation',
  /** The branches of the dependencies a plan task builds on could not be merged. */
  mergeConflict: 'merge_conflict',
} as const;
export type FailureClass = (typeof FAILURE_CLASSES)[keyof typeof FAILURE_CLASSES];
export const FAILURE_CLASS_NAMES = Object.values(FAILURE_CLASSES) as readonly FailureClass[];

/**
 * The failure type of a worktree activity sent to the worktree's worker that finds the worktree's
 * directory gone from its disk (deleted while the task ran): nothing there to commit, and no retry
 * brings it back. Not a failure class: a task that fails on it records `crash`.
 */
export const WORKTREE_GONE = 'worktree_gone';

/** Classes no retry can fix: the workflow stops at once. */
export const NON_RETRYABLE_CLASSES: readonly FailureClass[] = [
  FAILURE_CLASSES.invalidInput,
  FAILURE_CLASSES.unknownAgent,
  FAILURE_CLASSES.agentNotFound,
  FAILURE_CLASSES.cancelled,
  FAILURE_CLASSES.lockViolation,
  FAILURE_CLASSES.mergeConflict,
];

/** Classes that count against an agent's circuit breaker: the agent (or its provider) is refusing work. */
export const BREAKER_CLASSES: readonly FailureClass[] = [
  FAILURE_CLASSES.rateLimited,
  FAILURE_CLASSES.overloaded,
  FAILURE_CLASSES.auth,
];

/**
 * What the workflow does after a failed attempt: `retry` on the same agent (with backoff, or at the
 * agent's reset time), move to the `next` agent of the chain at once, or `fail` the task.
 */
export const POLICY_ACTIONS = ['retry', 'next', 'fail'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

export interface FailurePolicy {
  action: PolicyAction;
  /** With `retry`: retries of this class on one agent before moving on; unset, up to `maxAttempts`. */
  retries?: number;
  /** With `retry`: first backoff (doubling per attempt); unset, the task's backoff. */
  backoffSeconds?: number;
  /** With `retry`: when the agent names a reset time, wait for it (if it is close enough) instead of backing off. */
  waitForReset?: boolean;
  /** A reset further away than this moves on to the next agent instead of waiting. */
  maxResetWaitSeconds?: number;
}

/** Per-class policies when a profile sets none; a profile's `policies` override them class by class. */
export const DEFAULT_POLICIES: Readonly<Record<Exclude<FailureClass, 'succeeded'>, FailurePolicy>> = {
  rate_limited: { action: 'retry', retries: 1, waitForReset: true, maxResetWaitSeconds: 300 },
  overloaded: { action: 'retry' },
  crash: { action: 'retry' },
  stalled: { action: 'retry' },
  timeout: { action: 'retry', retries: 1 },
  nonzero_exit: { action: 'retry' },
  bad_output: { action: 'next' },
  auth: { action: 'next' },
  context_overflow: { action: 'next' },
  agent_not_found: { action: 'next' },
  unknown_agent: { action: 'next' },
  max_turns: { action: 'fail' },
  invalid_input: { action: 'fail' },
  cancelled: { action: 'fail' },
  lock_violation: { action: 'fail' },
  merge_conflict: { action: 'fail' },
};

/** Longest fallback chain a task may name. */
export const MAX_CHAIN_LENGTH = 10;

export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TerminalStatus = Extract<TaskStatus, 'succeeded' | 'failed' | 'cancelled'>;

export const LIMITS = {
  timeoutSeconds: { min: 1, max: 86_400 },
  maxAttempts: { min: 1, max: 20 },
  priority: { min: 1, max: 5 },
} as const;

/**
 * The code level the API starts task workflows at (`AgentTaskInput.codeLevel`). A task started at a
 * level takes every path the agent task workflow's patches introduced up to that level without
 * asking `patched()`, which would write a marker and a `TemporalChangeVersion` search attribute upsert
 * (one more visibility write in the Temporal server) into every new history. A patch added later
 * still asks `patched()` at this level; it is taken without asking from the next level on, once this
 * constant is raised.
 */
export const TASK_CODE_LEVEL = 3;

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
  /**
   * The fallback chain, first agent first (`agent` is its head). Unset: `agent` alone. Each agent gets
   * up to `maxAttempts` attempts, as its policies allow, before the task moves to the next one.
   */
  agents?: string[];
  /** While the chain is held back (breaker open, limits, budget), how often to look again. */
  waitRecheckSeconds?: number;
  /** File locks held while the agent runs (see workflows/file-locks.ts); unset: none. */
  locks?: TaskLocks;
  /**
   * The git repository the task works on: its agent runs in a worktree of its own on branch
   * `atelier/<task id>`, and its changes are committed there (see workflows/worktree.ts). Unset: the
   * agent runs in `workdir`.
   */
  repo?: TaskRepo;
  /** With `repo` and `locks`: a change outside the declared locks fails the task (`lock_violation`). */
  failOnLockViolations?: boolean;
  /**
   * The workflow code level the task was started at (`TASK_CODE_LEVEL`). Unset: a task started before
   * levels existed, whose history holds a marker for every patch it took.
   */
  codeLevel?: number;
  /**
   * Started by a plan: the workflow's result is the short one its plan reads (workflows/plan-result.ts),
   * so the plan's history does not hold every task's whole result. Unset: the whole result.
   */
  resultForPlan?: boolean;
}

export interface TaskRepo {
  /** Absolute path of a local git repository, on the agent workers' machines. */
  path: string;
  /** Where the task's branch starts; default HEAD. */
  ref?: string;
  /**
   * Commits merged into `ref` when the branch is made: a plan task that builds on several dependencies
   * starts from all of their work. A conflict fails the task (`merge_conflict`).
   */
  merge?: string[];
}

/** What a task with a repository committed (the patch itself is in PostgreSQL). */
export interface TaskCommit {
  branch: string;
  baseSha: string;
  sha: string;
  changedFiles: string[];
  diffstat: string;
  /** Changed files no declared lock covers. */
  lockViolations: string[];
  /**
   * In a workflow's history, how many paths each list leaves out (activities/git/history-sized-commit.ts);
   * PostgreSQL keeps them all.
   */
  omitted?: { changedFiles: number; lockViolations: number };
}

/** A task's file locks: globs relative to the repository, all granted at once by its lock manager. */
export interface TaskLocks {
  /** Absolute path of the repository: one lock manager per repository. */
  repo: string;
  globs: string[];
}

export interface AgentTaskOutput {
  status: 'succeeded';
  attempts: number;
  exitCode: number;
  /** Last bytes of stdout only; the full output is in PostgreSQL. */
  outputTail: string;
  /** The agent of the chain that produced the result. */
  agent?: string;
  costUsd?: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
  /** Set for a task with a repository. */
  commit?: TaskCommit;
}

/** Input of one agent attempt, run by an agent worker. */
export interface RunAgentInput {
  taskId: string;
  attempt: number;
  agent: string;
  model?: string;
  workdir?: string;
  timeoutSeconds: number;
  /**
   * Admission first: the agent's breaker, cluster-wide limits and budgets may hold the attempt back,
   * and then nothing runs and the output carries `waiting`. Workflows from before admission existed
   * leave it unset (they could not handle a `waiting` answer).
   */
  gated?: boolean;
  /**
   * The workflow records the task's success itself, once the worktree is committed (and its lock
   * violations are judged): a successful attempt is closed, the task is not ended by it.
   */
  deferSuccess?: boolean;
  /**
   * Another agent of the task's chain comes after this one: an attempt held back by this agent's open
   * breaker is followed at once by the next agent's, so on a worker's own queue its slot is kept for it.
   * False for the chain's last agent (the task waits then, and the slot goes to others); unset in
   * attempts scheduled before it existed, which keep the slot as they did.
   */
  moreInChain?: boolean;
}

/** Why an attempt was not admitted; the workflow waits (durably) and asks again. */
export const WAIT_KINDS = [
  'breaker_open',
  'concurrency',
  'start_rate',
  'daily_budget',
  'task_budget',
  /** The agent worker that took the attempt shuts down: asked again at once, elsewhere. */
  'worker_draining',
  /** The agent worker that took the attempt from the shared queue had no free slot: asked again at once. */
  'worker_busy',
] as const;
export type WaitKind = (typeof WAIT_KINDS)[number];

export interface AdmissionWait {
  kind: WaitKind;
  agent: string;
  message: string;
  /** When it may change by itself (epoch ms): the breaker's cooldown, the start window, the day's end. */
  until: number | null;
}

export interface RunAgentOutput {
  exitCode: number;
  outputBytes: number;
  outputTail: string;
  agent?: string;
  costUsd?: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
  turns?: number | null;
  sessionId?: string | null;
  /** Set when the attempt was not admitted: nothing ran and no attempt was recorded. */
  waiting?: AdmissionWait;
  /**
   * Set when the answer is an earlier attempt's success, recorded by a worker that died before
   * answering: that attempt's number (this one ran nothing, and has no record).
   */
  attempt?: number;
  /**
   * A success whose work the worker could not commit on the task's branch (`deferSuccess`): the work is
   * only in that worker's worktree until the workflow's commit there.
   */
  workUnsaved?: boolean;
}

/** Carried in the details of a failed attempt's ApplicationFailure, for the workflow's policy. */
export interface AttemptFailureDetails {
  /** The profile's policy for this class (defaults applied). */
  policy?: FailurePolicy;
  /** When the agent said its limit resets (epoch ms). */
  resetAt?: number | null;
}

export interface WaitingRecord {
  taskId: string;
  wait: AdmissionWait;
}

/**
 * Signal that makes a waiting task look again at once: sent when a budget is raised, a limited agent's
 * slot frees, or an agent's breaker is reset or closes.
 */
export const WAKE_SIGNAL = 'wake';

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
  /**
   * An end the attempt loop decided (a failure, a cancel), which an attempt's success overrides: when an
   * attempt of the run succeeded without ending it (`RunAgentInput.deferSuccess`) and its answer was
   * lost, nothing is written and that success is the answer, for the workflow to commit and record.
   * Never set after the workflow judged a success itself (lock violations, a commit that failed).
   */
  unlessAttemptSucceeded?: boolean;
}

/** A run's terminal state as PostgreSQL holds it (`recordTaskOutcome`'s answer). */
export interface RecordedOutcome {
  status: TerminalStatus;
  attempt: number;
  exitCode?: number;
  /** The agent of that attempt, when it ran one (unset in histories from before). */
  agent?: string;
}

/** How long a silent agent worker may go before Temporal declares the attempt lost. */
export const AGENT_HEARTBEAT_TIMEOUT_SECONDS = 10;
/** Room between the agent's own timeout and Temporal's hard limit, for the kill grace and the final write. */
export const AGENT_TIMEOUT_MARGIN_SECONDS = 30;
/**
 * More room for an attempt on one worker's own queue (a worktree task's): it may wait there in line for
 * one of the worker's slots (agent-slot-pool.ts), and that wait must not cut its agent's time limit,
 * which the worker counts from the agent's start.
 */
export const WORKER_QUEUE_LINE_SECONDS = 3600;

/** Task and run ids are UUIDs; anything else names nothing. */
export const isUuid = (value: string): boolean =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

export const workflowIdForTask = (taskId: string): string => `task-${taskId}`;

// ---- Plans: tasks with dependencies (workflows/plan.workflow.ts) ----

export const PLAN_ON_FAILURE = ['stop', 'continue'] as const;
export type PlanOnFailure = (typeof PLAN_ON_FAILURE)[number];
export const PLAN_STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type PlanStatus = (typeof PLAN_STATUSES)[number];

export const PLAN_LIMITS = {
  /** A plan's whole graph travels in its workflow input and history; this keeps both small. */
  tasks: { min: 1, max: 200 },
  maxParallel: { min: 1, max: 100 },
} as const;

/** One task of a plan, as the plan workflow sees it: its place in the graph and its own workflow's input. */
export interface PlanTaskInput {
  key: string;
  dependsOn: string[];
  task: AgentTaskInput;
}

/** Input of `planWorkflow`. Its tasks' rows are already in PostgreSQL, written with the plan. */
export interface PlanInput {
  planId: string;
  tasks: PlanTaskInput[];
  /** Tasks of the plan running at once. */
  maxParallel: number;
  /** `stop`: after a failure nothing more starts. `continue`: only the failed task's dependants are skipped. */
  onFailure: PlanOnFailure;
}

export interface PlanOutput {
  status: Exclude<PlanStatus, 'running' | 'cancelled'>;
  succeeded: string[];
  failed: string[];
  skipped: string[];
}

export interface PlanSkip {
  key: string;
  taskId: string;
  reason: string;
}

export interface PlanSkipRecord {
  planId: string;
  skips: PlanSkip[];
}

/** A plan's task whose workflow run closed without recording its end, and how it closed. */
export interface ClosedChildRecord {
  taskId: string;
  runId: string;
  /** As `ended in Temporal (terminated)`. */
  ended: string;
}

export type PlanEndStatus = Exclude<PlanStatus, 'running'>;

export interface PlanOutcomeRecord {
  planId: string;
  status: PlanEndStatus;
}

export const workflowIdForPlan = (planId: string): string => `plan-${planId}`;

/**
 * Signal (with a task's key) asking a plan to cancel one of its tasks: one not started yet is never
 * started, one running is cancelled. Sent by `POST /v1/tasks/:id/cancel` for a task the plan has not
 * started, whose own workflow does not exist yet.
 */
export const CANCEL_PLAN_TASK_SIGNAL = 'cancelPlanTask';

// ---- File locks (workflows/lock-manager.workflow.ts) ----

/** One task's request for all its locks at once (no hold-and-wait), keyed by the requesting run. */
export interface LockRequest {
  /** `<workflow id>/<run id>` of the requesting task workflow: a retried request is recognised. */
  requestId: string;
  /** The workflow run told (by signal) when the locks are granted: that run only, never a later one. */
  workflowId: string;
  runId: string;
  taskId: string;
  globs: string[];
  /** Epoch ms when the lock manager saw the request (holders: when granted). */
  since?: number;
}

export interface LockManagerInput {
  repo: string;
  /** Carried over `continueAsNew`. */
  holders?: LockRequest[];
  waiters?: LockRequest[];
  /** How often holders are checked for having ended without releasing (terminated, timed out). */
  reapIntervalSeconds?: number;
  /**
   * Carried over `continueAsNew`: releases remembered, by request id (epoch ms); the name is from when
   * only those that came before their requests were.
   */
  earlyReleases?: Record<string, number>;
  /**
   * Carried over `continueAsNew`: when the next reap is due (epoch ms), so a manager busy enough to
   * continue as new within every reap interval still reaps.
   */
  nextReapAt?: number;
}

export interface LockTable {
  repo: string;
  holders: LockRequest[];
  waiters: LockRequest[];
}

export interface LockRelease {
  requestId: string;
}

/** Signal names; the signal and query definitions are in lock-manager.workflow.ts. */
export const LOCK_SIGNALS = {
  acquire: 'acquireLocks',
  release: 'releaseLocks',
  granted: 'locksGranted',
} as const;
export const LOCK_TABLE_QUERY = 'lockTable';
/** Query of a lock manager: how large the table it carries over `continueAsNew` is (LockTableSize). */
export const LOCK_TABLE_SIZE_QUERY = 'lockTableSize';

/**
 * How large a lock manager's table is: its holders and waiters, and the UTF-8 bytes of the JSON it
 * carries over `continueAsNew` (holders, waiters and remembered releases), which must stay well within
 * Temporal's 2 MB limit for one payload.
 */
export interface LockTableSize {
  entries: number;
  /**
   * The UTF-8 bytes of the JSON of its holders and waiters, each with the comma after it (0 when there
   * are none): what ATELIER_LOCK_TABLE_MAX_BYTES limits. Absent from a manager on a worker from before it.
   */
  tableBytes?: number;
  carriedBytes: number;
}

export const LOCK_LIMITS = { globs: 50, globLength: 500 } as const;

/** The lock manager of one repository (its absolute path). */
export const workflowIdForLocks = (repo: string): string => `locks:${repo}`;

/** The longest repository path a lock manager's workflow id holds: Temporal takes ids of up to 1000 bytes. */
export const MAX_LOCKED_REPO_BYTES = 1000 - workflowIdForLocks('').length;
