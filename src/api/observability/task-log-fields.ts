import type { IncomingMessage, ServerResponse } from 'node:http';
import { workflowIdForTask } from '../../../workflows/definitions';

const TASK_PATH = /^\/v1\/tasks\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:[/?]|$)/i;

/** Where a handler leaves the id of a task it created, for the request's log line. */
export const TASK_ID_LOCAL = 'atelierTaskId';

/**
 * pino-http `customProps`: every request log line about a task carries its `taskId` and `workflowId`,
 * taken from the path (`/v1/tasks/:id/...`) or, for a submission, from the task it created.
 */
export function taskLogFields(req: IncomingMessage, res: ServerResponse): Record<string, string> {
  const fromPath = TASK_PATH.exec((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '');
  const locals = (res as ServerResponse & { locals?: Record<string, unknown> }).locals;
  const created = locals?.[TASK_ID_LOCAL];
  const taskId = fromPath?.[1] ?? (typeof created === 'string' ? created : undefined);
  return taskId ? { taskId, workflowId: workflowIdForTask(taskId) } : {};
}
