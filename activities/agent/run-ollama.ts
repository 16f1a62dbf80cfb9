import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { OutputStream, RunEnd } from './parsers/types';

export interface OllamaRequest {
  baseUrl: string;
  model: string;
  prompt: string;
  timeoutMs: number;
  /** Abort the call when no chunk arrives for this long (`stalled`). */
  idleTimeoutMs?: number;
  /** Aborting stops the call. */
  signal: AbortSignal;
  /** The NDJSON response as it streams (stdout), or an error status's body (stderr). */
  onOutput: (stream: OutputStream, text: string) => void;
}

/**
 * The server's address as messages name it (the attempt's error, its Temporal failure, the API): a
 * `baseUrl` may carry credentials (`https://user:token@host`) or a token in its query, which are left out.
 */
export function ollamaAddress(baseUrl: string): string {
  if (!URL.canParse(baseUrl)) return 'the Ollama server';
  const { origin, pathname } = new URL(baseUrl);
  return `${origin}${pathname}`;
}

/**
 * One streamed `POST {baseUrl}/api/generate` to Ollama, made by the agent worker itself: there is no
 * process to spawn. Ends like a process run does (timeout, idle limit, abort), with `http_error` for an
 * error status and `connection_failed` when the server cannot be reached or breaks off. Settles only
 * once the request is over, so no call outlives its attempt.
 */
export async function runOllama(req: OllamaRequest): Promise<RunEnd> {
  const controller = new AbortController();
  let stopReason: 'timed_out' | 'stalled' | 'aborted' | undefined;
  const stop = (reason: 'timed_out' | 'stalled' | 'aborted'): void => {
    if (stopReason) return;
    stopReason = reason;
    controller.abort();
  };
  const timeout = setTimeout(() => stop('timed_out'), req.timeoutMs);
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    if (req.idleTimeoutMs === undefined) return;
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => stop('stalled'), req.idleTimeoutMs);
  };
  const onAbort = (): void => stop('aborted');
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener('abort', onAbort, { once: true });
  armIdle();
  try {
    const url = new URL('api/generate', req.baseUrl.endsWith('/') ? req.baseUrl : `${req.baseUrl}/`);
    const body = JSON.stringify({ model: req.model, prompt: req.prompt, stream: true });
    // node:http, not fetch: fetch gives up on a server that sends no headers for 5 minutes, and Ollama
    // sends none until its first token, which a large model on a CPU may take longer than that to make.
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      signal: controller.signal,
    });
    request.end(body);
    const [res] = (await once(request, 'response')) as [IncomingMessage];
    const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
    const decoder = new TextDecoder();
    const stream: OutputStream = ok ? 'stdout' : 'stderr';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      armIdle();
      const text = decoder.decode(chunk, { stream: true });
      if (text) req.onOutput(stream, text);
    }
    const rest = decoder.decode();
    if (rest) req.onOutput(stream, rest);
    return ok ? { kind: 'exited', exitCode: 0 } : { kind: 'http_error', status: res.statusCode ?? 0 };
  } catch (err) {
    if (stopReason) return { kind: stopReason };
    const { code, message } = err as { code?: string; message: string };
    return { kind: 'connection_failed', message: `cannot reach ${ollamaAddress(req.baseUrl)}: ${code ?? message}` };
  } finally {
    clearTimeout(timeout);
    if (idleTimer) clearTimeout(idleTimer);
    req.signal.removeEventListener('abort', onAbort);
  }
}
