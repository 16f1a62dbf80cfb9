import type { History } from '@temporalio/common/lib/proto-utils';

/** The calls of the Temporal workflow client a download makes. */
export interface HistoryClient {
  getHandle(
    workflowId: string,
    runId?: string,
  ): { describe(): Promise<{ runId: string }>; fetchHistory(): Promise<History> };
}

/**
 * The history of the run `runId` of a workflow, else of its latest run, with that run's id. The latest
 * run is asked for first and its history downloaded by its id: asked together, a run started between
 * the two answers (a retry, a reset) would name one run beside the history of another.
 */
export async function downloadHistory(
  workflow: HistoryClient,
  workflowId: string,
  runId?: string,
): Promise<{ runId: string; history: History }> {
  const run = runId ?? (await workflow.getHandle(workflowId).describe()).runId;
  return { runId: run, history: await workflow.getHandle(workflowId, run).fetchHistory() };
}
