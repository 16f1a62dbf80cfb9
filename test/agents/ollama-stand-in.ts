import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OllamaStandIn {
  baseUrl: string;
  /** Requests received so far. */
  requests: () => number;
  close: () => Promise<void>;
}

/** The only model this server has; any other is "not found", as Ollama answers for a model not pulled. */
export const STAND_IN_MODEL = 'stand-in';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += (chunk as Buffer).toString('utf8');
  return text;
}

/**
 * Streams one generation the way Ollama's `POST /api/generate` does: NDJSON chunks with `response`,
 * then a `done: true` chunk with the token counts. The prompt drives it, like the stand-in CLI:
 *   @print TEXT              a chunk of the answer         @sleep SECONDS   wait before going on
 *   @hang                    stop sending, keep the connection open
 *   @http-error STATUS TEXT  answer STATUS with {"error": TEXT} instead of a stream
 *   @stream-error TEXT       an {"error": TEXT} line mid-stream, then the end (no done chunk)
 *   @no-done                 end the stream without the done chunk
 *   @drop                    break the connection mid-stream
 * A prompt without directives is the answer, word by word.
 */
async function generate(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = JSON.parse(await body(req)) as { model?: string; prompt?: string; stream?: boolean };
  const prompt = request.prompt ?? '';
  const directives = prompt.split('\n').filter((l) => l.startsWith('@'));
  const fail = (status: number, error: string): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error }));
  };
  if (request.model !== STAND_IN_MODEL) {
    fail(404, `model "${request.model ?? ''}" not found, try pulling it first`);
    return;
  }
  const errorDirective = directives.find((d) => d.startsWith('@http-error '));
  if (errorDirective) {
    const [, status, ...words] = errorDirective.split(' ');
    fail(Number(status), words.join(' '));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  const created_at = (): string => new Date().toISOString();
  let evalCount = 0;
  const chunk = (response: string): void => {
    evalCount += 1;
    res.write(`${JSON.stringify({ model: STAND_IN_MODEL, created_at: created_at(), response, done: false })}\n`);
  };
  if (directives.length === 0) {
    prompt.split(/(?<= )/).forEach(chunk);
  }
  for (const line of directives) {
    const [name, ...rest] = line.split(' ');
    const arg = rest.join(' ');
    if (name === '@print') chunk(`${arg}\n`);
    else if (name === '@sleep') await sleep(Number(arg) * 1000);
    else if (name === '@hang')
      return; // the server's close() ends the connection
    else if (name === '@stream-error') {
      res.end(`${JSON.stringify({ error: arg })}\n`);
      return;
    } else if (name === '@drop') {
      res.socket?.destroy(); // the connection breaks mid-answer
      return;
    } else if (name === '@no-done') {
      res.end();
      return;
    }
  }
  res.end(
    `${JSON.stringify({
      model: STAND_IN_MODEL,
      created_at: created_at(),
      response: '',
      done: true,
      done_reason: 'stop',
      context: [1, 2, 3],
      total_duration: 1_000_000,
      load_duration: 100_000,
      prompt_eval_count: prompt.split(/\s+/).filter(Boolean).length,
      prompt_eval_duration: 100_000,
      eval_count: evalCount,
      eval_duration: 500_000,
    })}\n`,
  );
}

/** A tiny stand-in for an Ollama server on 127.0.0.1 and a free port. */
export async function startOllamaStandIn(): Promise<OllamaStandIn> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests += 1;
    if (req.method !== 'POST' || req.url !== '/api/generate') {
      res.writeHead(404).end('404 page not found');
      return;
    }
    generate(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
