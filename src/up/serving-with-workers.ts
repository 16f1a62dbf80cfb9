/** Who polls the task queues, as `GET /health/ready` reports it beside its checks. */
interface ReadyBody {
  workers?: Record<string, { pollers?: number }>;
}

/**
 * Whether the API at `baseUrl` is ready (PostgreSQL and Temporal answer) and workers poll both task
 * queues: the whole service can run a task. Readiness alone does not need workers (an API without
 * them still takes submissions), so this reads the `workers` the answer reports too.
 */
export async function servingWithWorkers(baseUrl: string, signal?: AbortSignal): Promise<boolean> {
  const res = await fetch(`${baseUrl}/health/ready`, { signal });
  if (!res.ok) return false;
  const { workers } = (await res.json()) as ReadyBody;
  return (workers?.workflow?.pollers ?? 0) > 0 && (workers?.agent?.pollers ?? 0) > 0;
}
