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

/** `atelier logs -f` of a stream that sends a log event it cannot read. */
describe('CLI: logs -f of a malformed log event', () => {
  let api: StubApi;
  const events = [
    `id: 1.1.1\nevent: log\ndata: ${JSON.stringify({ seq: 1, text: 'first\n' })}\n\n`,
    'id: 1.1.2\nevent: log\ndata: {"seq": 2, "text": "sec\n\n',
    `id: 1.1.3\nevent: log\ndata: ${JSON.stringify({ seq: 3, text: 'third\n' })}\n\n`,
    'event: end\ndata: {"status":"succeeded"}\n\n',
  ];

  before(async () => {
    // Resumes after Last-Event-ID, as the API does.
    api = await stubApi((req, res) => {
      const after = req.headers['last-event-id'];
      const from = after === undefined ? 0 : events.findIndex((e) => e.startsWith(`id: ${String(after)}\n`)) + 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(events.slice(from).join(''));
    });
  });
  after(() => api.close());

  it('fails naming the event, rather than skip its output unsaid', async () => {
    const r = await atelier(['logs', '-f', ID], api.url, { timing: PATIENT });
    assert.equal(r.code, EXIT.error, r.stderr);
    assert.equal(r.stdout, 'first\n', 'what came before it, and nothing after');
    assert.match(r.stderr, /the log stream sent a log event 1\.1\.2 that is not JSON/);
  });
});
