import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { AgentsFileError, loadAgentsFile, parseAgentsFile } from '../../src/config/agents-file';
import { OUTPUT_PARSERS } from '../../activities/agent/parsers';

const ROOT = resolve(__dirname, '../../..');

function rejected(text: string, path: string, reason: RegExp): void {
  assert.throws(
    () => parseAgentsFile(text, 'inline'),
    (err: unknown) => {
      assert.ok(err instanceof AgentsFileError, String(err));
      const line = err.message.split('\n').find((l) => l.trim().startsWith(`${path}: `));
      assert.ok(line, `the error names ${path}: ${err.message}`);
      assert.match(line, reason);
      return true;
    },
  );
}

const file = (profiles: string): string => `defaultAgent: a\nagents:\n${profiles}`;

describe('agents file: parsers, chains, limits, prices, policies', () => {
  it('reads every new field of a profile', () => {
    const agents = parseAgentsFile(
      file(`  a:
    command: [claude, -p, --output-format, stream-json, --verbose]
    output: claude-stream-json
    idleSeconds: 300
    fallback: [b, local]
    limits: { maxConcurrent: 3, startsPerMinute: 20 }
    pricing: { inputPerMillionUsd: 3, cachedInputPerMillionUsd: 0.3, outputPerMillionUsd: 15 }
    breaker: { failureThreshold: 4 }
    errorPatterns:
      auth: ['license expired']
    policies:
      rate_limited: { action: retry, retries: 2, maxResetWaitSeconds: 600 }
      auth: { action: fail }
  b:
    command: [codex, exec, --json, '-']
    output: codex-jsonl
  local:
    output: ollama-http
    baseUrl: http://127.0.0.1:11434
    model: qwen2.5-coder:7b
`),
      'inline',
    );
    const a = agents.agents.a;
    assert.equal(a?.output, 'claude-stream-json');
    assert.equal(a?.idleSeconds, 300);
    assert.deepEqual(a?.fallback, ['b', 'local']);
    assert.deepEqual(a?.limits, { maxConcurrent: 3, startsPerMinute: 20 });
    assert.deepEqual(a?.pricing, { inputPerMillionUsd: 3, cachedInputPerMillionUsd: 0.3, outputPerMillionUsd: 15 });
    assert.deepEqual(a?.breaker, { failureThreshold: 4, windowSeconds: 60, cooldownSeconds: 60 });
    assert.deepEqual(a?.policies?.rate_limited, { action: 'retry', retries: 2, maxResetWaitSeconds: 600 });
    const local = agents.agents.local;
    assert.deepEqual(local?.command, [], 'an HTTP agent has no argv');
    assert.equal(local?.baseUrl, 'http://127.0.0.1:11434');
  });

  it('knows a parser for every output format', () => {
    const parsers = Object.keys(OUTPUT_PARSERS).sort();
    assert.deepEqual(parsers, [
      'aider-text',
      'claude-json',
      'claude-stream-json',
      'codex-jsonl',
      'gemini-json',
      'gemini-stream-json',
      'ollama-http',
      'text',
    ]);
  });

  it('refuses what cannot work, naming the field', () => {
    rejected(file('  a:\n    command: [x]\n    output: xml\n'), 'agents.a.output', /claude-json/);
    rejected(
      file('  a:\n    command: [x]\n    fallback: [nobody]\n'),
      'agents.a.fallback.0',
      /"nobody" is not among agents/,
    );
    rejected(file('  a:\n    command: [x]\n    fallback: [a]\n'), 'agents.a.fallback.0', /appears twice/);
    rejected(
      file('  a:\n    command: [x]\n    fallback: [b, b]\n  b:\n    command: [y]\n'),
      'agents.a.fallback.1',
      /twice/,
    );
    rejected(
      file('  a:\n    command: [x]\n    policies: { auth: { action: panic } }\n'),
      'agents.a.policies.auth.action',
      /retry/,
    );
    rejected(
      file('  a:\n    command: [x]\n    policies: { sleepy: { action: fail } }\n'),
      'agents.a.policies',
      /Unrecognized key: "sleepy"/,
    );
    rejected(
      file("  a:\n    command: [x]\n    errorPatterns: { auth: ['(unclosed'] }\n"),
      'agents.a.errorPatterns.auth.0',
      /regular expression/,
    );
    rejected(
      file('  a:\n    command: [x]\n    limits: { maxConcurrent: 0 }\n'),
      'agents.a.limits.maxConcurrent',
      />=1/,
    );
    rejected(file('  a:\n    command: [x]\n    idleSeconds: 0\n'), 'agents.a.idleSeconds', />=0.1/);
    rejected(file('  a:\n    output: ollama-http\n    model: m\n'), 'agents.a.baseUrl', /needs a baseUrl/);
    rejected(
      file('  a:\n    output: ollama-http\n    baseUrl: http://h:1\n    model: m\n    command: [x]\n'),
      'agents.a.command',
      /runs no command/,
    );
    rejected(
      file('  a:\n    command: [x]\n    baseUrl: http://h:1\n'),
      'agents.a.baseUrl',
      /only used with output: ollama-http/,
    );
  });

  it('accepts config/agents.example.yaml, a ready profile for every family', () => {
    const example = loadAgentsFile(resolve(ROOT, 'config/agents.example.yaml'));
    const outputs = new Set(Object.values(example.agents).map((p) => p.output));
    for (const format of Object.keys(OUTPUT_PARSERS)) assert.ok(outputs.has(format as never), `a ${format} profile`);
    assert.deepEqual(example.agents['claude-opus']?.fallback, ['codex', 'ollama-qwen']);
  });
});
