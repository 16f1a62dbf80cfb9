import type { AgentProfile, AgentsFile } from '../../config/agents-file';
import { isDirectory } from '../../fs/is-directory';
import type { NewTask } from '../../store/task-store';
import type { FieldProblem } from '../http/validation';
import { lockProblems, lockViolationPolicy } from '../locks/lock-input';
import type { CreateTaskDto } from './dto/create-task.dto';
import { fallbacksWithoutModel, resolveChain } from './resolve-chain';
import { storedRepo, repoProblems } from './task-repo-input';

/** Waiting tasks of a higher priority are dispatched first; 3 sits in the middle of 1 to 5. */
const DEFAULT_PRIORITY = 3;

/** What a submitted task is stored as, but for what names it (id, workflow id, key). */
export type ResolvedTask = Omit<NewTask, 'id' | 'workflowId' | 'idempotencyKey'>;

/**
 * Checks a submitted task (alone, or in a plan) against the agents file and this machine, beyond what
 * its DTO checks: its chain's agents exist and have models, its workdir, repo and locks exist and fit.
 * Answers every problem found, each field named by `at`, or the task as it is stored, its profile's
 * defaults filled in.
 */
export function resolveTaskInput(
  dto: Omit<CreateTaskDto, 'idempotencyKey'>,
  agents: AgentsFile,
  at: (field: string) => string,
): { ok: true; task: ResolvedTask } | { ok: false; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const resolved = resolveChain(dto, agents);
  if (!resolved.ok) problems.push(...resolved.problems.map((p) => ({ ...p, field: at(p.field) })));
  if (dto.workdir !== undefined && !isDirectory(dto.workdir)) {
    problems.push({ field: at('workdir'), problems: ['workdir must be an existing directory'] });
  }
  const chain = resolved.ok ? resolved.chain : [];
  const agentName = chain[0];
  const profile = agentName === undefined ? undefined : (agents.agents[agentName] as AgentProfile);
  const model = dto.model ?? profile?.model;
  if (profile && model === undefined && profile.command.some((arg) => arg.includes('{model}'))) {
    problems.push({ field: at('model'), problems: [`agent "${agentName}" needs a model and has no default`] });
  }
  const modelless = fallbacksWithoutModel(chain, agents);
  if (modelless.length > 0) {
    problems.push({
      field: at('agents'),
      problems: [`fallback agent(s) ${modelless.join(', ')} need a model and have no default`],
    });
  }
  problems.push(...repoProblems(dto.repo, dto.workdir, at('repo')));
  problems.push(...lockProblems(dto.locks, dto.repo?.path ?? dto.workdir, at('locks')));
  const failOn = lockViolationPolicy(dto, profile ?? {}, at('failOnLockViolations'));
  problems.push(...failOn.problems);
  if (problems.length > 0 || agentName === undefined || profile === undefined) return { ok: false, problems };
  return {
    ok: true,
    task: {
      prompt: dto.prompt,
      agent: agentName,
      model,
      workdir: dto.workdir,
      timeoutSeconds: dto.timeoutSeconds ?? profile.timeoutSeconds,
      maxAttempts: dto.maxAttempts ?? profile.maxAttempts,
      priority: dto.priority ?? DEFAULT_PRIORITY,
      labels: dto.labels ?? {},
      agents: chain,
      budgetUsd: dto.budgetUsd,
      locks: dto.locks,
      repo: storedRepo(dto.repo),
      failOnLockViolations: failOn.value,
    },
  };
}
