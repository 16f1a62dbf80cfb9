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
`,
  'inline',
);

describe('buildInvocation', () => {
  it('substitutes placeholders inside each argv element, once', () => {
    const inv = buildInvocation(
      { profile: agents.agents.a!, prompt: 'use {model} && rm -rf / $(id)', workdir: '/w' },
      { PATH: '/bin', SECRET_KEY: 'k', OTHER: 'x' },
    );
    assert.equal(inv.file, 'agent-cli');
    assert.deepEqual(inv.args, ['--model', 'm1', '--cwd', '/w', 'say: use {model} && rm -rf / $(id)']);
    assert.equal(inv.stdin, '');
  });

  it('passes only the allowed environment plus fixed values', () => {
    const inv = buildInvocation(
      { profile: agents.agents.a!, prompt: 'p' },
      { PATH: '/bin', SECRET_KEY: 'k', OTHER: 'x' },
    );
    assert.deepEqual(inv.env, { PATH: '/bin', SECRET_KEY: 'k', FIXED: '1' });
  });

  it('refuses a model that begins with "-", as a non-retryable invalid_input failure', () => {
    for (const model of ['--approval-mode=yolo', '-y']) {
      assert.throws(
        () => buildInvocation({ profile: agents.agents.a!, prompt: 'p', model }, {}),
        (err: unknown) =>
          err instanceof ApplicationFailure &&
          err.type === 'invalid_input' &&
          err.nonRetryable &&
          err.message.includes(`model "${model}" begins with "-"`),
      );
    }
  });

  it('sends the prompt on stdin for stdin profiles and prefers the requested model', () => {
    const inv = buildInvocation({ profile: agents.agents.s!, prompt: 'hello', model: 'big' }, {});
    assert.deepEqual(inv.args, ['-p']);
    assert.equal(inv.stdin, 'hello');
    assert.equal(inv.promptFile, undefined);
  });

  it('gives the prompt in a file for file profiles, and names that file where "{promptFile}" stands', () => {
    const inv = buildInvocation({ profile: agents.agents.f!, prompt: '--yolo {promptFile}' }, {});
    assert.deepEqual(inv.args, ['--message-file=/dev/fd/3']);
    assert.equal(inv.promptFile, '--yolo {promptFile}');
    assert.equal(inv.stdin, '');
  });
});
