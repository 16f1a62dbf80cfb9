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
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: req.model, prompt: req.prompt, stream: true }),
      signal: controller.signal,
    });
    const decoder = new TextDecoder();
    const stream: OutputStream = res.ok ? 'stdout' : 'stderr';
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        armIdle();
        const text = decoder.decode(chunk, { stream: true });
        if (text) req.onOutput(stream, text);
      }
    }
    const rest = decoder.decode();
    if (rest) req.onOutput(stream, rest);
    return res.ok ? { kind: 'exited', exitCode: 0 } : { kind: 'http_error', status: res.status };
  } catch (err) {
    if (stopReason) return { kind: stopReason };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return {
      kind: 'connection_failed',
      message: `cannot reach ${req.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    };
  } finally {
    clearTimeout(timeout);
    if (idleTimer) clearTimeout(idleTimer);
    req.signal.removeEventListener('abort', onAbort);
  }
}
