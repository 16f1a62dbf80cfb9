import { LIMITS, MAX_CHAIN_LENGTH, TASK_CODE_LEVEL, isUuid, type AgentTaskInput } from './definitions';

const within = (value: unknown, range: { min: number; max: number }): boolean =>
  typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max;

/**
 * Checks the workflow input again (the API checked it first), so a workflow started by hand from the
 * CLI or the Web UI with bad input fails at once instead of running an agent. Returns the problems found.
 */
export function findInputProblems(input: AgentTaskInput): string[] {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null) return ['input must be an object'];
  // A UUID, as the API makes them: the task's worktree is a directory named after it, under the worker's
  // root, and a path ("../x") would have the worker move or delete files outside it.
  if (typeof input.taskId !== 'string' || !isUuid(input.taskId)) problems.push('taskId must be a UUID');
  if (typeof input.agent !== 'string' || input.agent.length === 0) problems.push('agent must be a non-empty string');
  if (input.model !== undefined && typeof input.model !== 'string') problems.push('model must be a string');
  if (input.workdir !== undefined && (typeof input.workdir !== 'string' || !input.workdir.startsWith('/'))) {
    problems.push('workdir must be an absolute path');
  }
  if (!within(input.timeoutSeconds, LIMITS.timeoutSeconds)) problems.push('timeoutSeconds out of range');
  if (!within(input.maxAttempts, LIMITS.maxAttempts)) problems.push('maxAttempts out of range');
  if (!within(input.priority, LIMITS.priority)) problems.push('priority out of range');
  if (typeof input.agentTaskQueue !== 'string' || input.agentTaskQueue.length === 0) {
    problems.push('agentTaskQueue must be a non-empty string');
  }
  if (input.agents !== undefined) {
    const chain: unknown = input.agents;
    if (
      !Array.isArray(chain) ||
      chain.length < 1 ||
      chain.length > MAX_CHAIN_LENGTH ||
      !chain.every((a) => typeof a === 'string' && a.length > 0) ||
      new Set(chain).size !== chain.length
    ) {
      problems.push(`agents must be 1 to ${MAX_CHAIN_LENGTH} distinct agent names`);
    } else if (chain[0] !== input.agent) {
      problems.push('agents must start with agent');
    }
  }
  if (
    input.waitRecheckSeconds !== undefined &&
    (typeof input.waitRecheckSeconds !== 'number' || !(input.waitRecheckSeconds > 0))
  ) {
    problems.push('waitRecheckSeconds must be a positive number');
  }
  if (input.codeLevel !== undefined && !within(input.codeLevel, { min: 0, max: TASK_CODE_LEVEL })) {
    problems.push(`codeLevel must be an integer from 0 to ${TASK_CODE_LEVEL}`);
  }
  if (input.resultForPlan !== undefined && typeof input.resultForPlan !== 'boolean') {
    problems.push('resultForPlan must be a boolean');
  }
  const isPath = (value: unknown): boolean => typeof value === 'string' && value.startsWith('/');
  const areStrings = (value: unknown): boolean => Array.isArray(value) && value.every((v) => typeof v === 'string');
  if (input.locks !== undefined) {
    const locks: unknown = input.locks;
    const { repo, globs } = (typeof locks === 'object' && locks !== null ? locks : {}) as Record<string, unknown>;
    if (!isPath(repo) || !areStrings(globs)) problems.push('locks must be {repo: an absolute path, globs: strings}');
  }
  if (input.repo !== undefined) {
    const repo: unknown = input.repo;
    const { path, ref, merge } = (typeof repo === 'object' && repo !== null ? repo : {}) as Record<string, unknown>;
    if (
      !isPath(path) ||
      (ref !== undefined && typeof ref !== 'string') ||
      (merge !== undefined && !areStrings(merge))
    ) {
      problems.push('repo must be {path: an absolute path, ref?: a string, merge?: strings}');
    }
  }
  for (const field of ['backoffSeconds', 'maxBackoffSeconds'] as const) {
    const value: unknown = input[field];
    if (value !== undefined && (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value))) {
      problems.push(`${field} must be a number of seconds, 0 or more`);
    }
  }
  return problems;
}
