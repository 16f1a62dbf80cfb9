import { randomUUID } from 'node:crypto';

export interface BadRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A small seeded generator, so a failing corpus can be reproduced. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percent-encodes a path segment; an unpaired surrogate becomes its (invalid) UTF-8 bytes, hostile too. */
const pathSegment = (text: string): string => {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
};

const JSON_HEADERS = { 'content-type': 'application/json' };
const HOSTILE = [
  '; rm -rf / #',
  '$(id)',
  '`reboot`',
  '../../../../etc/passwd',
  '/etc/passwd',
  '%00',
  'x\u0000y',
  '\ud800',
  '\u202e\u0644\u0627',
  '🙂'.repeat(50),
  '{prompt}',
  '${PATH}',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
];
const NOT_STRINGS: unknown[] = [0, -1, 1.5, true, false, null, [], ['x'], {}, { a: 1 }];

/** Each mutation makes a valid body definitely invalid in one way. */
const MUTATIONS: ((body: Record<string, unknown>, pick: <T>(xs: T[]) => T) => void)[] = [
  (b, pick) => (b.prompt = pick(NOT_STRINGS)),
  (b) => delete b.prompt,
  (b) => (b.prompt = ''),
  (b) => (b.prompt = 'x'.repeat(200_001)),
  (b, pick) => (b.prompt = `ok ${pick(['\u0000', '\ud800', '\udfff x'])}`),
  (b, pick) => (b.agent = `${pick(HOSTILE)}-${randomUUID()}`),
  (b, pick) => (b.agent = pick(NOT_STRINGS.filter((v) => v !== null))), // null means "the default agent"
  (b, pick) =>
    (b.workdir = pick([
      'relative/dir',
      './x',
      '../../etc',
      '/etc/passwd',
      `/nonexistent/${randomUUID()}`,
      '/tmp/\u0000',
      7,
    ])),
  // (null, and 1e400 which serializes to null, mean "absent" for an optional field: valid, so not here)
  (b, pick) => (b.timeoutSeconds = pick([0, -1, 86_401, 1.5, '10', [1], {}])),
  (b, pick) => (b.maxAttempts = pick([0, 21, '3', 2.5, {}])),
  (b, pick) => (b.priority = pick([0, 6, 'high', -3, true])),
  (b, pick) => (b.labels = pick([[], 'k:v', { k: 1 }, { k: { nested: 'x' } }, { '': 'x' }, { k: 'x\u0000' }])),
  (b) => (b.labels = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']))),
  (b, pick) => (b[pick(['extra', 'admin', 'status', 'id', 'constructor', 'workflowId'])] = pick(['x', 1, true])),
  (b, pick) => (b.idempotencyKey = pick(['', 'k'.repeat(201), 5, ['k']])),
  (b, pick) => (b.model = pick(['', 12, 'm\u0000'])),
  (b) => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 500; i++) deep = { d: deep };
    b.labels = deep;
  },
];

const RAW_BODIES = [
  '{"prompt": "unterminated',
  '{"prompt": "x"} trailing',
  "{'prompt': 'single quotes'}",
  '{"prompt": NaN}',
  '[',
  '',
  'null',
  '"just a string"',
  '[{"prompt": "in an array"}]',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `{"prompt": "${'x'.repeat(1_100_000)}"}`,
];

/**
 * `count` malformed and hostile requests, every one of which must be refused with a 4xx: bad bodies
 * for POST /v1/tasks, broken JSON, oversize bodies and headers, wrong content types, bad paths,
 * methods and query strings, and valid ones from another site's web page.
 */
export function badRequests(count: number, seed = 20261122): BadRequest[] {
  const random = generator(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const kinds: (() => BadRequest)[] = [
    () => {
      const body: Record<string, unknown> = { prompt: 'a valid prompt', agent: 'stand-in' };
      pick(MUTATIONS)(body, pick);
      return { method: 'POST', path: '/v1/tasks', headers: JSON_HEADERS, body: JSON.stringify(body) };
    },
    () => ({ method: 'POST', path: '/v1/tasks', headers: JSON_HEADERS, body: pick(RAW_BODIES) }),
    () => ({
      method: 'POST',
      path: '/v1/tasks',
      headers: {
        'content-type': pick(['application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded']),
      },
      body: pick(['prompt=x', '{"prompt": "x", "bogus": 1}']),
    }),
    () => ({
      method: 'POST',
      path: '/v1/tasks',
      headers: { ...JSON_HEADERS, 'x-filler': 'h'.repeat(20_000) },
      body: '{"prompt": "header abuse"}',
    }),
    () => ({
      method: 'GET',
      path: pick([
        '/v1/tasks?status=bogus',
        '/v1/tasks?limit=0',
        '/v1/tasks?limit=-1',
        '/v1/tasks?limit=1e309',
        '/v1/tasks?label=nocolon',
        '/v1/tasks?cursor=%00%00',
        `/v1/tasks?cursor=${Buffer.from('["2024-02-31 25:00:00+00","x"]').toString('base64url')}`,
        '/v1/tasks?unknown=1',
        '/v1/tasks?__proto__[polluted]=1',
        `/v1/tasks/${pathSegment(pick(HOSTILE))}`,
        `/v1/tasks/${randomUUID()}`,
        `/v1/tasks/${randomUUID()}/logs`,
        '/v1/tasks/..%2F..%2Fetc%2Fpasswd',
        '/v1/nothing-here',
      ]),
      headers: {},
    }),
    () => ({ method: pick(['PUT', 'PATCH', 'DELETE']), path: '/v1/tasks', headers: JSON_HEADERS, body: '{}' }),
    () => ({ method: 'POST', path: `/v1/tasks/${pick([randomUUID(), 'garbage', '%00'])}/cancel`, headers: {} }),
    // A valid submission from another site's page (the API has no tokens here): refused, 403.
    () => ({
      method: 'POST',
      path: pick(['/v1/tasks', '/v1/agents/stand-in/breaker/reset']),
      headers: { ...JSON_HEADERS, origin: pick(['https://evil.example', 'null', 'http://10.0.0.5:3000']) },
      body: JSON.stringify({ prompt: 'a valid prompt, sent by another site', agent: 'stand-in' }),
    }),
  ];
  return Array.from({ length: count }, () => pick(kinds)());
}
