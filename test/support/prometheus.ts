/** Samples of a Prometheus exposition text, keyed by `name{labels}` as written (labels in written order). */
export type Samples = Map<string, number>;

export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{.*\})?)\s+(\S+)/.exec(line);
    if (m) samples.set(m[1] as string, Number(m[2]));
  }
  return samples;
}

/**
 * The value of the sample `name` whose labels include every pair in `labels` (0 when there is none:
 * counters with no sample yet have not counted anything), summed over the matching samples.
 */
export function sample(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const [key, value] of samples) {
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    const own = new Map([...key.slice(brace + 1).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => own.get(k) === v)) {
      total += value;
      found = true;
    }
  }
  return found ? total : 0;
}

/** True when some sample of `name` is present. */
export function hasMetric(samples: Samples, name: string): boolean {
  return [...samples.keys()].some((k) => k === name || k.startsWith(`${name}{`));
}

export async function scrape(url: string): Promise<{ contentType: string; samples: Samples; text: string }> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  const text = await res.text();
  return { contentType: res.headers.get('content-type') ?? '', samples: parseMetrics(text), text };
}
