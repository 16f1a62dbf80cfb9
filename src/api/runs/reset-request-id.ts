import { createHash } from 'node:crypto';

/**
 * The request id of a reset, the same for every try of one reset: of run `runId` of `workflowId`, to
 * the workflow task completed at `resetToEventId`. Temporal answers a repeated reset request id with
 * the run that the first one made, so a reset that reached Temporal but whose transaction then failed
 * (the client, told 503, tries again) makes no second run. UUID-shaped, from a SHA-256 of the three.
 */
export function resetRequestId(workflowId: string, runId: string | undefined, resetToEventId: number): string {
  const hex = createHash('sha256')
    .update(JSON.stringify(['atelier-reset', workflowId, runId ?? null, resetToEventId]))
    .digest('hex');
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20, 32)].join('-');
}
