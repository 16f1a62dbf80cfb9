import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { Cli } from '../../src/cli/context';
import { table } from '../../src/cli/format';
import { printable } from '../../src/cli/printable';

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
});
