import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSpawnLog, readSpawnLog, SPAWN_LOG_VARIABLE, SPAWN_LOG_WRAPPER, spawnsBetween } from '../bench/spawn-log';

describe('benchmark spawn log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-spawn-log-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pairs each exit with its pid’s latest start, a reused pid starting a new execution, each filed under its task', () => {
    const spawns = parseSpawnLog(
      [
        'start 10 1000.000100 3f2a-task 1',
        'start 11 1000,002000 - -', // a locale whose decimal point is a comma; an agent told no task
        'exit 10 1000.500100 0',
        'start 10 1001.000000', // a log of before the wrapper logged tasks
        'exit 10 1001.250000 3',
        '',
      ].join('\n'),
    );
    assert.deepEqual(spawns, [
      { pid: 10, taskId: '3f2a-task', attempt: 1, startMs: 1_000_000.1, exitMs: 1_000_500.1, status: 0 },
      { pid: 11, taskId: null, attempt: null, startMs: 1_000_002, exitMs: null, status: null },
      { pid: 10, taskId: null, attempt: null, startMs: 1_001_000, exitMs: 1_001_250, status: 3 },
    ]);
    assert.deepEqual(
      spawnsBetween(spawns, 1_000_001, 1_001_000).map((s) => s.pid),
      [11],
    );
    assert.throws(() => parseSpawnLog('exit 12 1000.0 0\n'), /without its start/);
  });

  const wrapped = (log: string, args: string[], input = '', cwd = dir, task: Record<string, string> = {}) =>
    spawnSync(SPAWN_LOG_WRAPPER, args, {
      cwd,
      input,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, [SPAWN_LOG_VARIABLE]: log, ...task },
    });

  it('logs the task and attempt the worker gives the agent, "-" for one unset or empty, never evaluating them', () => {
    const log = join(dir, 'tasks.log');
    const id = '0b9c4e1a-7d2f-4c8e-9a31-5e6f7a8b9c0d';
    assert.equal(wrapped(log, ['true'], '', dir, { ATELIER_TASK_ID: id, ATELIER_ATTEMPT: '2' }).status, 0);
    assert.equal(wrapped(log, ['true'], '', dir, { ATELIER_TASK_ID: '' }).status, 0);
    // A value that would split the line, add one, or run something if evaluated stays one field.
    const hostile = wrapped(log, ['true'], '', dir, {
      ATELIER_TASK_ID: '$(touch pwned) x\nstart 1 2',
      ATELIER_ATTEMPT: '`id`',
    });
    assert.equal(hostile.status, 0);
    assert.equal(existsSync(join(dir, 'pwned')), false);
    assert.deepEqual(
      readSpawnLog(log).map((s) => [s.taskId, s.attempt]),
      [
        [id, 2],
        [null, null],
        ['__touch_pwned__x_start_1_2', NaN],
      ],
    );
  });

  it("runs the agent's program with its arguments and stdin as given, logs its start and exit, and passes on its status", () => {
    const log = join(dir, 'args.log');
    const hostile = ['$(touch pwned)', '; ls', '*', "it's", '-n', ''];
    const echo = wrapped(log, ['printf', '[%s]\\n', ...hostile]);
    assert.equal(echo.status, 0);
    assert.equal(echo.stdout, hostile.map((a) => `[${a}]\n`).join(''));
    assert.equal(existsSync(join(dir, 'pwned')), false);
    assert.equal(wrapped(log, ['cat'], 'the prompt\n').stdout, 'the prompt\n');
    assert.equal(wrapped(log, ['sh', '-c', 'exit 7']).status, 7);
    const spawns = readSpawnLog(log);
    assert.equal(spawns.length, 3);
    assert.deepEqual(
      spawns.map((s) => s.status),
      [0, 0, 7],
    );
    for (const s of spawns) assert.ok(s.exitMs !== null && s.exitMs >= s.startMs && s.startMs > Date.now() - 60_000);
  });

  it('resolves a program named by a relative path from the repository root, wherever the agent runs', () => {
    const log = join(dir, 'relative.log');
    const res = wrapped(log, ['test/agents/stand-in-agent.mjs'], '@print hello\n', tmpdir());
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /hello/);
    assert.equal(readSpawnLog(log).length, 1);
  });

  it('runs nothing without a log to write to', () => {
    const res = spawnSync(SPAWN_LOG_WRAPPER, ['touch', join(dir, 'unlogged')], { env: { PATH: process.env.PATH } });
    assert.notEqual(res.status, 0);
    assert.equal(existsSync(join(dir, 'unlogged')), false);
  });
});
