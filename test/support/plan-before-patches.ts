import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { workflowIdForTask, type PlanTaskInput } from '../../workflows/definitions';
import { testEnv } from './test-env';

/**
 * Takes a plan's first workflow task off `taskQueue` (no worker may poll it yet) and completes it as the
 * plan's code from before its first patch did: no patch marker, only `first`'s child started (the first
 * ready task; that code started one task per round trip). The workflow worker that takes the plan over
 * replays that task, finds none of the plan's patches in it, and so runs the plan down its unpatched
 * paths, as it runs plans that code started. A workflow started today always takes the patched ones.
 */
export async function completeFirstTaskBeforePatches(
  client: Client,
  taskQueue: string,
  first: PlanTaskInput,
): Promise<void> {
  const identity = 'plan-code-before-patches';
  const { namespace } = testEnv;
  // A long poll: the server wants a deadline on it.
  const task = await client.connection.withDeadline(Date.now() + 30_000, () =>
    client.workflowService.pollWorkflowTaskQueue({
      namespace,
      taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      identity,
    }),
  );
  if (task.workflowType?.name !== 'planWorkflow') throw new Error(`polled ${task.workflowType?.name ?? 'nothing'}`);
  await client.workflowService.respondWorkflowTaskCompleted({
    namespace,
    identity,
    taskToken: task.taskToken,
    // As a worker of that SDK recorded them (test/histories/plan-continue-after-failure.json).
    sdkMetadata: { coreUsedFlags: [1, 2, 3], sdkName: 'temporal-typescript', sdkVersion: '1.24.0' },
    commands: [
      {
        commandType: temporal.api.enums.v1.CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        startChildWorkflowExecutionCommandAttributes: {
          namespace,
          workflowId: workflowIdForTask(first.task.taskId),
          workflowType: { name: 'agentTaskWorkflow' },
          taskQueue: { name: taskQueue },
          input: { payloads: [defaultPayloadConverter.toPayload(first.task)] },
          parentClosePolicy: temporal.api.enums.v1.ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE,
          workflowIdReusePolicy: temporal.api.enums.v1.WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
        },
      },
    ],
  });
}
