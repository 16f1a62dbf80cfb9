import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import { atelierInProcess as atelier, PATIENT, stubApi, type StubApi } from '../support/cli-in-process';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';
/** What an `echo -n`-like agent prints: no line feed at the end. */
const OUTPUT = 'Hello from Atelier';

/** `atelier logs` of an output that does not end its line: on a terminal and to a pipe. */
describe('CLI: logs of an output without a final line feed', () => {
  let api: StubApi;

  before(async () => {
    api = await stubApi((req, res) => {
      if (req.url === `/v1/tasks/${ID}/logs`) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return res.end(OUTPUT);
      }
      // The log stream of a run that has ended: its output, then the end.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const log = { run: 1, attempt: 1, seq: 1, stream: 'stdout', text: OUTPUT };
      res.end(`id: 1.1.1\nevent: log\ndata: ${JSON.stringify(log)}\n\nevent: end\ndata: {"status":"succeeded"}\n\n`);
    });
  });
  after(() => api.close());

  for (const args of [
    ['logs', ID],
    ['logs', '-f', ID],
  ]) {
    it(`atelier ${args.join(' ')}: ends the line on a terminal, and writes the bytes as they are to a pipe`, async () => {
      const terminal = await atelier(args, api.url, { ttyStdout: true, timing: PATIENT });
      assert.equal(terminal.code, EXIT.ok, terminal.stderr);
      assert.equal(terminal.stdout, `${OUTPUT}\n`);
      const piped = await atelier(args, api.url, { timing: PATIENT });
      assert.equal(piped.code, EXIT.ok, piped.stderr);
      assert.equal(piped.stdout, OUTPUT);
    });
  }
});
