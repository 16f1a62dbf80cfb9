import { Agent, request } from 'node:http';
import type { Scenario } from './scenarios';

export interface Submission {
  baseUrl: string;
  scenario: Scenario;
  label: string;
  /** Tasks per second for `halfMax` arrivals: half the no-op throughput measured earlier in the same run. */
  halfMaxRate: number | undefined;
  /** The git repository of a `worktree` workload. */
  repo?: string;
}

/** The body of task `index`: see `Scenario.workload`. */
function taskBody(s: Submission, index: number): Record<string, unknown> & { idempotencyKey: string } {
  const { scenario } = s;
  const common = { labels: { bench: s.label }, idempotencyKey: `${s.label}-${index}` };
  if (scenario.workload === 'worktree') {
    if (s.repo === undefined) throw new Error(`${scenario.name} needs a repository`);
    // `@pidfile` writes the agent's pid to the file: one new file per task, for its commit.
    return {
      ...common,
      prompt: `@pidfile task-${index}.txt\n@sleep ${scenario.seconds}`,
      agent: 'writer',
      repo: { path: s.repo },
    };
  }
  return scenario.seconds === 0
    ? { ...common, prompt: `noop ${index}`, agent: 'noop' }
    : { ...common, prompt: String(scenario.seconds), agent: 'sleep' };
}

const BURST_CONCURRENCY = 32;
/** A submission unanswered this long fails the run rather than hang it. */
const SUBMIT_TIMEOUT_MS = 30_000;

/**
 * Kept-alive connections for the submissions. The load generator shares the machine's cores with the
 * service it measures: Node's plain HTTP client costs it less CPU per request than `fetch`.
 */
const agent = new Agent({ keepAlive: true, maxSockets: BURST_CONCURRENCY });

/** Sends task `index`, recording when by its idempotency key in `sentMs`. */
function submitOne(s: Submission, index: number, sentMs: Map<string, number>): Promise<void> {
  const task = taskBody(s, index);
  const body = JSON.stringify(task);
  return new Promise((resolve, reject) => {
    const req = request(
      `${s.baseUrl}/v1/tasks`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        signal: AbortSignal.timeout(SUBMIT_TIMEOUT_MS),
      },
      (res) => {
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (answer += chunk));
        res.on('end', () =>
          res.statusCode === 201
            ? resolve()
            : reject(new Error(`submission ${index} answered ${res.statusCode}: ${answer}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err) => reject(new Error(`submission ${index}: ${err.message}`)));
    sentMs.set(task.idempotencyKey, Date.now());
    req.end(body);
  });
}

/**
 * Submits the scenario's tasks over REST: all at once (bounded concurrency) or at a steady rate.
 * Returns when each was sent, by idempotency key: the start of its latency and of the makespan.
 */
export async function submitAll(s: Submission): Promise<Map<string, number>> {
  const { scenario } = s;
  const sentMs = new Map<string, number>();
  if (scenario.arrival.kind === 'burst') {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(BURST_CONCURRENCY, scenario.tasks) }, async () => {
        while (next < scenario.tasks) await submitOne(s, next++, sentMs);
      }),
    );
    return sentMs;
  }
  const rate = scenario.arrival.kind === 'rate' ? scenario.arrival.perSecond : s.halfMaxRate;
  if (rate === undefined) throw new Error(`${scenario.name} needs the no-op throughput, measured in the same run`);
  const start = Date.now();
  const pending: Promise<void>[] = [];
  // The first failure stops the submissions; caught at once, so that it is not an unhandled rejection meanwhile.
  let failure: unknown;
  for (let i = 0; i < scenario.tasks && failure === undefined; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(submitOne(s, i, sentMs).catch((err: unknown) => void (failure ??= err)));
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure;
  return sentMs;
}
