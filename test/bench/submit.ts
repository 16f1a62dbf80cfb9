import type { Scenario } from './scenarios';

export interface Submission {
  baseUrl: string;
  scenario: Scenario;
  label: string;
  /** Tasks per second for `halfMax` arrivals. */
  halfMaxRate: number;
}

const BURST_CONCURRENCY = 32;

async function submitOne(s: Submission, index: number): Promise<void> {
  const noop = s.scenario.seconds === 0;
  const res = await fetch(`${s.baseUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: noop ? `noop ${index}` : String(s.scenario.seconds),
      agent: noop ? 'noop' : 'sleep',
      labels: { bench: s.label },
      idempotencyKey: `${s.label}-${index}`,
    }),
  });
  if (res.status !== 201) throw new Error(`submission ${index} answered ${res.status}: ${await res.text()}`);
}

/** Submits the scenario's tasks over REST: all at once (bounded concurrency) or at a steady rate. */
export async function submitAll(s: Submission): Promise<void> {
  const { scenario } = s;
  if (scenario.arrival.kind === 'burst') {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(BURST_CONCURRENCY, scenario.tasks) }, async () => {
        while (next < scenario.tasks) await submitOne(s, next++);
      }),
    );
    return;
  }
  const rate = scenario.arrival.kind === 'rate' ? scenario.arrival.perSecond : s.halfMaxRate;
  const start = Date.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < scenario.tasks; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(submitOne(s, i));
  }
  await Promise.all(pending);
}
