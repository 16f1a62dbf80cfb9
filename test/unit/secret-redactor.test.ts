import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildInvocation } from '../../activities/agent/build-invocation';
import type { OutputStream } from '../../activities/agent/parsers/types';
import { SecretRedactor, type Secret } from '../../activities/agent/secret-redactor';
import { parseAgentsFile } from '../../src/config/agents-file';

const KEY: Secret = { name: 'API_KEY', value: 'sk-test-0123456789' };

/** A redactor over `secrets` and every chunk it passed on, per stream, in order. */
function redactor(secrets: readonly Secret[]) {
  const passed: Record<OutputStream, string[]> = { stdout: [], stderr: [] };
  const r = new SecretRedactor(secrets, (stream, text) => passed[stream].push(text));
  return { r, passed };
}

/** What comes out when `chunks` go in on stdout, followed by the end of the output. */
function redactChunks(secrets: readonly Secret[], chunks: string[]): string {
  const { r, passed } = redactor(secrets);
  for (const chunk of chunks) r.write('stdout', chunk);
  r.flush();
  return passed.stdout.join('');
}

/** Asserts that `text` comes out as `expected` however it is cut in two, and one character at a time. */
function assertRedactedEverySplit(secrets: readonly Secret[], text: string, expected: string): void {
  for (let at = 1; at < text.length; at++) {
    assert.equal(redactChunks(secrets, [text.slice(0, at), text.slice(at)]), expected, `split at ${at}`);
  }
  assert.equal(redactChunks(secrets, [...text]), expected, 'one character at a time');
}

describe('SecretRedactor', () => {
  it('masks a secret in a chunk at once, leaving the text around it as it was', () => {
    const { r, passed } = redactor([KEY]);
    r.write('stdout', `{"key":"${KEY.value}","n":1}\nnext ${KEY.value}\n`);
    assert.deepEqual(passed.stdout, ['{"key":"[redacted:API_KEY]","n":1}\nnext [redacted:API_KEY]\n']);
  });

  it('masks a secret split across chunks, wherever the split falls', () => {
    assertRedactedEverySplit([KEY], `before ${KEY.value} after\n`, 'before [redacted:API_KEY] after\n');
  });

  it('passes on at once what cannot begin a secret, and holds back only what can', () => {
    const { r, passed } = redactor([KEY]);
    r.write('stdout', 'plain line\n');
    assert.deepEqual(passed.stdout, ['plain line\n']);
    r.write('stdout', 'see sk-te');
    assert.deepEqual(passed.stdout, ['plain line\n', 'see '], 'only "sk-te" may begin the secret');
    r.write('stdout', 'xt');
    assert.deepEqual(passed.stdout, ['plain line\n', 'see ', 'sk-text'], 'no longer the secret: passed on');
  });

  it('masks several secrets, and of overlapping ones the longest', () => {
    const short: Secret = { name: 'SHORT', value: 'abcdefgh' };
    const long: Secret = { name: 'LONG', value: 'abcdefgh-ijkl' };
    const other: Secret = { name: 'OTHER', value: 'zyxwvuts' };
    const secrets = [short, long, other];
    assertRedactedEverySplit(
      secrets,
      `1 ${long.value} 2 ${short.value}-ij 3 ${other.value}${short.value}`,
      '1 [redacted:LONG] 2 [redacted:SHORT]-ij 3 [redacted:OTHER][redacted:SHORT]',
    );
  });

  it('keeps each stream apart: a secret is not joined from stdout and stderr', () => {
    const { r, passed } = redactor([KEY]);
    r.write('stdout', 'out sk-test-');
    r.write('stderr', '0123456789 err\n');
    r.write('stdout', '0123456789\n');
    r.flush();
    assert.deepEqual(passed, { stdout: ['out ', '[redacted:API_KEY]\n'], stderr: ['0123456789 err\n'] });
  });

  it('passes on what it held back when the output ends, once', () => {
    const { r, passed } = redactor([KEY]);
    r.write('stderr', 'cut off at sk-test');
    assert.deepEqual(passed.stderr, ['cut off at ']);
    r.flush();
    r.flush();
    assert.deepEqual(passed.stderr, ['cut off at ', 'sk-test']);
  });

  it("masks the values a profile gives its agent, but not short ones or the machine's variables", () => {
    const { agents } = parseAgentsFile(
      `
defaultAgent: a
agents:
  a:
    command: [agent-cli]
    envPassthrough: [PATH, HOME, LC_ALL, CODEX_HOME, API_KEY, DEBUG]
    env: { FIXED_TOKEN: fixed-token-value, MODE: fast }
`,
      'inline',
    );
    const machine = {
      PATH: '/usr/local/bin:/usr/bin',
      HOME: '/home/agent-user',
      LC_ALL: 'en_US.UTF-8',
      CODEX_HOME: '/srv/codex-state',
    };
    const invocation = buildInvocation(
      { profile: agents.a!, prompt: 'p', task: { id: 'task-1', attempt: 1 } },
      { ...machine, API_KEY: KEY.value, DEBUG: '1', NOT_PASSED: 'not-passed-through-value' },
    );
    const printed = [
      ...Object.values(machine),
      KEY.value,
      '1',
      'fixed-token-value',
      'fast',
      'not-passed-through-value',
    ];
    assert.equal(
      redactChunks(invocation.secrets, [printed.join(' ')]),
      [...Object.values(machine), '[redacted:API_KEY] 1 [redacted:FIXED_TOKEN] fast not-passed-through-value'].join(
        ' ',
      ),
    );
  });

  it('masks a secret as a JSON string holds it: quotes, backslashes, line breaks and non-ASCII escaped', () => {
    const pem: Secret = { name: 'PEM', value: '-----BEGIN KEY-----\nMIIEv"q\\x\n-----END KEY-----' };
    const accented: Secret = { name: 'PASS', value: 'pässwörd-0123456789' };
    const line = JSON.stringify({ a: pem.value, b: accented.value });
    const python = line.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const expected = '{"a":"[redacted:PEM]","b":"[redacted:PASS]"}';
    assertRedactedEverySplit([pem, accented], line, expected);
    assert.equal(redactChunks([pem, accented], [python]), expected);
    assert.equal(redactChunks([pem], [pem.value]), '[redacted:PEM]', 'and as it is');
    const url: Secret = { name: 'HOOK', value: 'https://hooks.example/x?a=1&token=abc<d>' };
    const go = JSON.stringify({ u: url.value }).replace(
      /[<>&]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    assert.equal(redactChunks([url], [go]), '{"u":"[redacted:HOOK]"}', "as Go's JSON writes it");
  });

  it("masks the service's own secrets, which no agent is given but an agent could read", () => {
    const { agents } = parseAgentsFile('defaultAgent: a\nagents:\n  a:\n    command: [agent-cli]\n', 'inline');
    const service = {
      DATABASE_URL: 'postgres://atelier:s3cret-db-pass%21word@db:5432/atelier',
      TEMPORAL_API_KEY: 'temporal-cloud-key-0123',
      ATELIER_API_TOKENS: 'first-token-0123, second-token-4567',
      ATELIER_WEBHOOK_URLS:
        'https://hooks.slack.com/services/T0/B0/XyZsecret,https://bot:hook-password-0123@hooks.example/in',
      ATELIER_WEBHOOK_SECRET: 'hmac-key-0123456',
    };
    const invocation = buildInvocation(
      { profile: agents.a!, prompt: 'p', task: { id: 'task-1', attempt: 1 } },
      service,
    );
    assert.deepEqual(
      invocation.env,
      { ATELIER_TASK_ID: 'task-1', ATELIER_ATTEMPT: '1' },
      'the agent is given none of them',
    );
    const printed = [...Object.values(service), 's3cret-db-pass!word', 'second-token-4567', 'hook-password-0123'].join(
      ' ',
    );
    assert.equal(
      redactChunks(invocation.secrets, [printed]),
      [
        '[redacted:DATABASE_URL] [redacted:TEMPORAL_API_KEY] [redacted:ATELIER_API_TOKENS], [redacted:ATELIER_API_TOKENS]',
        '[redacted:ATELIER_WEBHOOK_URLS],[redacted:ATELIER_WEBHOOK_URLS] [redacted:ATELIER_WEBHOOK_SECRET] [redacted:DATABASE_URL] [redacted:ATELIER_API_TOKENS]',
        '[redacted:ATELIER_WEBHOOK_URLS]',
      ].join(' '),
    );
    const dev = buildInvocation(
      { profile: agents.a!, prompt: 'p', task: { id: 'task-1', attempt: 1 } },
      { DATABASE_URL: 'postgres://postgres:postgres@localhost/x' },
    );
    assert.equal(redactChunks(dev.secrets, ['uses postgres']), 'uses postgres', 'a short password is not masked alone');
  });
});
