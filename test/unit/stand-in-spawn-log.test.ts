import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { STAND_IN_AGENT } from '../support/test-env';

/** The stand-in's log of its own runs (STAND_IN_SPAWN_LOG), which the fault tests count executions by. */
describe('stand-in agent: spawn log', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-spawn-log-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], env: NodeJS.ProcessEnv, input = ''): string =>
    execFileSync(process.execPath, [STAND_IN_AGENT, ...args], {
      env: { PATH: process.env.PATH, ...env },
      input,
      encoding: 'utf8',
    });
  const entries = (log: string) =>
    readFileSync(log, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { pid: number; startedAt: number; prompt: string });

  it('logs each run with its pid, start time and the prompt as it arrived, by argument or stdin', () => {
    const log = join(dir, 'spawns.jsonl');
    const before = Date.now();
    const argPrompt = `'; touch x; ' $(id) \`id\` "\n{prompt} \\x00 é`;
    assert.equal(run(['--', argPrompt], { STAND_IN_SPAWN_LOG: log }), `${argPrompt}\n`);
    run([], { STAND_IN_SPAWN_LOG: log }, 'key-1\n@sleep 0');
    const [byArg, byStdin] = entries(log);
    assert.equal(entries(log).length, 2);
    assert.equal(byArg?.prompt, argPrompt);
    assert.equal(byStdin?.prompt, 'key-1\n@sleep 0');
    for (const entry of [byArg, byStdin]) {
      assert.ok(Number.isInteger(entry?.pid) && entry?.pid !== process.pid);
      // The process's start, in ms since the epoch: after this test asked for it, before now.
      assert.ok((entry?.startedAt ?? 0) >= before - 1 && (entry?.startedAt ?? Infinity) <= Date.now());
    }
    assert.notEqual(byArg?.pid, byStdin?.pid);
  });

  it('runs as ever with STAND_IN_SPAWN_LOG blank (unset)', () => {
    assert.equal(run(['--', 'hello'], { STAND_IN_SPAWN_LOG: '' }), 'hello\n');
  });
});
