import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/activity';
import { buildInvocation } from '../../activities/agent/build-invocation';
import { parseAgentsFile } from '../../src/config/agents-file';

const agents = parseAgentsFile(
  `
defaultAgent: a
agents:
  a:
    command: [agent-cli, --model, "{model}", --cwd, "{workdir}", "say: {prompt}"]
    prompt: arg
    model: m1
    envPassthrough: [PATH, SECRET_KEY]
    env: { FIXED: "1" }
  s:
    command: [agent-cli, -p]
  f:
    command: [agent-cli, "--message-file={promptFile}"]
    prompt: file
  t:
    command: [agent-cli]
    envPassthrough: [PATH, ATELIER_TASK_ID]
    env: { ATELIER_ATTEMPT: "7" }
`,
  'inline',
);

const task = { id: '0b9f7a52-3c1e-4d5e-9a0b-6f1c2d3e4f50', attempt: 2 };
const TASK_ENV = { ATELIER_TASK_ID: task.id, ATELIER_ATTEMPT: '2' };

describe('buildInvocation', () => {
  it('substitutes placeholders inside each argv element, once', () => {
    const inv = buildInvocation(
      { profile: agents.agents.a!, prompt: 'use {model} && rm -rf / $(id)', workdir: '/w', task },
      { PATH: '/bin', SECRET_KEY: 'k', OTHER: 'x' },
    );
    assert.equal(inv.file, 'agent-cli');
    assert.deepEqual(inv.args, ['--model', 'm1', '--cwd', '/w', 'say: use {model} && rm -rf / $(id)']);
    assert.equal(inv.stdin, '');
  });

  it('passes only the allowed environment plus fixed values', () => {
    const inv = buildInvocation(
      { profile: agents.agents.a!, prompt: 'p', task },
      { PATH: '/bin', SECRET_KEY: 'k', OTHER: 'x' },
    );
    assert.deepEqual(inv.env, { PATH: '/bin', SECRET_KEY: 'k', FIXED: '1', ...TASK_ENV });
  });

  it('names the task and attempt to the agent, over any value of those names it would otherwise get, and never masks them', () => {
    const inv = buildInvocation(
      { profile: agents.agents.t!, prompt: 'p', task },
      { PATH: '/bin', ATELIER_TASK_ID: 'the-worker-s-own', ATELIER_ATTEMPT: '9' },
    );
    assert.deepEqual(inv.env, { PATH: '/bin', ...TASK_ENV });
    assert.ok(!inv.secrets.some((secret) => secret.value === task.id), 'its output keeps the task id as said');
  });

  it('refuses a model that begins with "-", as a non-retryable invalid_input failure', () => {
    for (const model of ['--approval-mode=yolo', '-y']) {
      assert.throws(
        () => buildInvocation({ profile: agents.agents.a!, prompt: 'p', model, task }, {}),
        (err: unknown) =>
          err instanceof ApplicationFailure &&
          err.type === 'invalid_input' &&
          err.nonRetryable &&
          err.message.includes(`model "${model}" begins with "-"`),
      );
    }
  });

  it('sends the prompt on stdin for stdin profiles and prefers the requested model', () => {
    const inv = buildInvocation({ profile: agents.agents.s!, prompt: 'hello', model: 'big', task }, {});
    assert.deepEqual(inv.args, ['-p']);
    assert.equal(inv.stdin, 'hello');
    assert.equal(inv.promptFile, undefined);
  });

  it('gives the prompt in a file for file profiles, and names that file where "{promptFile}" stands', () => {
    const inv = buildInvocation({ profile: agents.agents.f!, prompt: '--yolo {promptFile}', task }, {});
    assert.deepEqual(inv.args, ['--message-file=/dev/fd/3']);
    assert.equal(inv.promptFile, '--yolo {promptFile}');
    assert.equal(inv.stdin, '');
  });
});
