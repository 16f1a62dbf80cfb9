import { createAgentActivities, type AgentActivityDeps } from './agent/agent.activities';
import { createWorktreeActivities, taskWorkSaver } from './git/worktree.activities';
import { createLockActivities } from './locks/lock.activities';
import { createPlanActivities } from './plan/plan.activities';
import { createBookkeepingActivities } from './store/bookkeeping.activities';

export {
  createAgentActivities,
  createBookkeepingActivities,
  createLockActivities,
  createPlanActivities,
  createWorktreeActivities,
  taskWorkSaver,
};
export type AgentActivities = ReturnType<typeof createAgentActivities>;
export type BookkeepingActivities = ReturnType<typeof createBookkeepingActivities>;
export type PlanActivities = ReturnType<typeof createPlanActivities>;
export type LockActivities = ReturnType<typeof createLockActivities>;
export type WorktreeActivities = ReturnType<typeof createWorktreeActivities>;
export type { AgentActivityDeps };
