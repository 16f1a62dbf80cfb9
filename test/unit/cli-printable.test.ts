import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import { Cli } from '../../src/cli/context';
import { table } from '../../src/cli/format';
import { printable } from '../../src/cli/printable';
import { atelierInProcess, PATIENT, sendJson, stubApi } from '../support/cli-in-process';

/** An agent's error that would write the reader's clipboard and clear their screen. */
const HOSTILE = 'failed\u001b]52;c;cm0gLXJmIH4=\u0007\u001b[2J\u009b31m done';

/** A CLI whose stdout and stderr are collected, each a terminal or not. */
function cliOn(tty: boolean): { cli: Cli; stdout: () => string; stderr: () => string } {
  const collect = () => {
    const stream = Object.assign(new PassThrough(), { isTTY: tty });
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { stream, text: () => text };
  };
  const [out, err] = [collect(), collect()];
  const cli = new Cli(
    { stdout: out.stream, stderr: err.stream, stdin: new PassThrough(), env: {} },
    { url: 'http://127.0.0.1:3000' },
  );
  return { cli, stdout: out.text, stderr: err.text };
}

describe('text from the service on a terminal', () => {
  it('shows control characters instead of obeying them: C0 and DEL in caret notation, C1 as \\u escapes', () => {
    assert.equal(printable(HOSTILE), 'failed^[]52;c;cm0gLXJmIH4=^G^[[2J\\u009b31m done');
    assert.equal(printable('a\tb\r\nc\u007f'), 'a\tb\r\nc^?', 'tabs and line ends stay');
  });

  it('makes every table cell printable: a task list or a status with an agent error in it', () => {
    const shown = table(['#', 'ERROR'], [[1, HOSTILE]]);
    assert.ok(!shown.includes('\u001b') && !shown.includes('\u009b'), shown);
    assert.match(shown, /\^\[\]52;c;/);
  });

  it('makes notes printable, and data only on a terminal: a pipe gets the bytes the agent wrote', async () => {
    const terminal = cliOn(true);
    terminal.cli.note(`task t failed: ${HOSTILE}`);
    terminal.cli.outData(HOSTILE);
    await new Promise((r) => setImmediate(r));
    assert.equal(terminal.stderr(), `task t failed: ${printable(HOSTILE)}\n`);
    assert.equal(terminal.stdout(), printable(HOSTILE));

    const pipe = cliOn(false);
    pipe.cli.outData(HOSTILE);
    await new Promise((r) => setImmediate(r));
    assert.equal(pipe.stdout(), HOSTILE);
  });

  it('keeps each table row on one line: a line break in a cell is shown as ↵, a tab as a space', () => {
    const shown = table(
      ['#', 'ERROR'],
      [
        [1, 'line one\r\nline two\tend'],
        [2, 'x'],
      ],
    );
    assert.deepEqual(shown.split('\n'), ['#  ERROR', '1  line one ↵ line two end', '2  x', '']);
  });

  it("status shows a task's error on its own line: no carriage return writes over it, no line break splits it", async () => {
    const id = '6b164171-b029-4597-b729-14ee9d951aec';
    const error = { class: 'agent_error', message: 'boom\rall good\nsecond line' };
    const at = '2026-12-06T12:00:00Z';
    const attempt = { number: 1, failureClass: 'nonzero_exit', exitCode: 3, startedAt: at, finishedAt: at };
    const task = {
      id,
      status: 'failed',
      error,
      agent: 'echo',
      model: null,
      priority: 3,
      labels: { note: 'a\tb' },
      createdAt: at,
      startedAt: at,
      finishedAt: at,
      maxAttempts: 1,
      links: { temporalUi: 'http://ui/x' },
      attempts: [{ ...attempt, worker: 'w', error: 'line one\nline two' }],
    };
    const api = await stubApi((_req, res) => sendJson(res, 200, task));
    try {
      const r = await atelierInProcess(['status', id], api.url, { timing: PATIENT });
      assert.equal(r.code, EXIT.ok, r.stderr);
      assert.doesNotMatch(r.stdout, /[\r\t]/);
      assert.match(r.stdout, /^status {4}failed \(agent_error: boom\^Mall good ↵ second line\)$/m);
      assert.match(r.stdout, /^labels {4}note=a b$/m);
      assert.match(r.stdout, /^1 +nonzero_exit +3 +0ms +w +line one ↵ line two$/m);
    } finally {
      api.close();
    }
  });
});
