/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** The stream sent nothing, not even a keep-alive comment, for `idleMs`: its connection is taken for dead. */
export class SseIdle extends Error {
  constructor(idleMs: number) {
    super(`the stream sent nothing for ${idleMs / 1000} s`);
    this.name = 'SseIdle';
  }
}

/**
 * Parses a text/event-stream body into events, per the HTML standard's rules: `event`, `data`
 * (several lines joined by newlines), `id`; comments and `retry` are skipped. With `idleMs`, a stream
 * that sends nothing for that long (a connection dropped without a word, half-open) is cancelled, and
 * the generator throws SseIdle.
 */
export async function* readSse(body: ReadableStream<Uint8Array>, idleMs?: number): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await readWithin(reader, idleMs);
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        if (end < 0) break;
        // A chunk that ends with \r may end in the middle of a \r\n: one line end, not two (an empty line
        // would end the event early). It waits for the next chunk, or the end of the stream.
        if (end === buffer.length - 1 && buffer[end] === '\r' && !done) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (done) break;
    }
  } finally {
    reader.releaseLock();
  }
}

/** The next chunk, or SseIdle (the stream cancelled) when none comes within `idleMs`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number | undefined,
): Promise<Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>> {
  if (idleMs === undefined) return reader.read();
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<'idle'>((resolve) => {
    timer = setTimeout(() => resolve('idle'), idleMs);
  });
  try {
    const next = await Promise.race([reader.read(), idle]);
    if (next !== 'idle') return next;
    await reader.cancel().catch(() => undefined);
    throw new SseIdle(idleMs);
  } finally {
    clearTimeout(timer);
  }
}
