import { createAgentActivities, type AgentActivityDeps } from './agent/agent.activities';
import { createBookkeepingActivities } from './store/bookkeeping.activities';

export { createAgentActivities, createBookkeepingActivities };
export type AgentActivities = ReturnType<typeof createAgentActivities>;
export type BookkeepingActivities = ReturnType<typeof createBookkeepingActivities>;
export type { AgentActivityDeps };
