/**
 * The task queue only one agent worker polls, beside the shared agent queue: work that must happen on
 * the machine that prepared a task's git worktree (the agent's attempts, the commit, the removal) is
 * sent there.
 */
export const workerQueueFor = (agentQueue: string, identity: string): string => `${agentQueue}/${identity}`;
