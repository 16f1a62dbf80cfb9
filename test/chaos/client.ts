import type { ChaosEnv } from './chaos-env';

export interface TaskRequest {
  prompt: string;
  agent?: string;
  idempotencyKey: string;
  labels: Record<string, string>;
  maxAttempts?: number;
}

/**
 * Submits like a careful client: a network error or a 5xx (the API restarting, the database away) is
 * retried with the same idempotency key, so the task exists exactly once however often it is sent.
 * Returns the accepted answer's HTTP status (201 created, 200 already known) and the task's id.
 */
export async function submitWithRetry(
  env: ChaosEnv,
  body: TaskRequest,
  timeoutMs = 120_000,
): Promise<{ status: number; id: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${env.stack.baseUrl}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status === 201 || res.status === 200)
        return { status: res.status, id: ((await res.json()) as { id: string }).id };
      last = `${res.status} ${await res.text()}`;
      if (res.status < 500) throw new Error(`submission refused: ${last}`);
    } catch (err) {
      if ((err as Error).message.startsWith('submission refused')) throw err;
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`submission ${body.idempotencyKey} never accepted; last: ${last}`);
}

/** Runs `work` over `items` with at most `concurrency` at once. */
export async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}
