import type { Duration } from '@temporalio/common';
import type { agentTaskWorkflow } from '../../workflows';
import { TASK_CODE_LEVEL, workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import type { Harness } from './in-process-workers';
import { insertTask, type TaskRowFields } from './task-rows';

/**
 * Stores a task with `prompt` (or these fields of its row) and starts its workflow on `queues`, as the
 * API would: the stand-in agent, one attempt, a minute, at today's code level, unless `input` says
 * otherwise; `workflow` adds to the start's options.
 */
export async function startAgentTask(
  h: Harness,
  queues: { workflowQueue: string; agentQueue: string },
  prompt: string | TaskRowFields,
  input: Partial<AgentTaskInput> = {},
  workflow: { workflowExecutionTimeout?: Duration } = {},
) {
  const taskId = await insertTask(h.pool, typeof prompt === 'string' ? { prompt } : prompt);
  const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
    taskQueue: queues.workflowQueue,
    workflowId: workflowIdForTask(taskId),
    args: [
      {
        taskId,
        agent: 'stand-in',
        timeoutSeconds: 60,
        maxAttempts: 1,
        priority: 3,
        agentTaskQueue: queues.agentQueue,
        codeLevel: TASK_CODE_LEVEL,
        ...input,
      },
    ],
    ...workflow,
  });
  return { taskId, handle };
}
