/** One Server-Sent Event as a client sees it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** The next event; undefined once the server has closed the stream. Throws after `timeoutMs`. */
  next: (timeoutMs?: number) => Promise<SseEvent | undefined>;
  close: () => Promise<void>;
}

/**
 * A minimal EventSource over fetch (Node has no EventSource): opens `url`, and parses the stream into
 * events as they arrive, following the SSE framing rules (blank line ends an event; `data:` lines join
 * with newlines; comment lines start with a colon).
 */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ended = false;

  const parse = (block: string): SseEvent | undefined => {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const at = line.indexOf(':');
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    return data.length > 0 ? { id, event, data: data.join('\n') } : undefined;
  };

  const next = async (timeoutMs = 15_000): Promise<SseEvent | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parse(block);
        if (event) return event;
        continue;
      }
      if (ended || !reader) return undefined;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no event from ${url} within ${timeoutMs} ms; buffered: ${JSON.stringify(buffer)}`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left)));
      const read = await Promise.race([reader.read(), timeout]);
      clearTimeout(timer);
      if (read === 'timeout') continue;
      if (read.done) ended = true;
      else buffer += decoder.decode(read.value, { stream: true }).replace(/\r\n?/g, '\n');
    }
  };

  return {
    status: res.status,
    headers: res.headers,
    next,
    close: async () => {
      abort.abort();
      await reader?.cancel().catch(() => undefined);
    },
  };
}

/** Every event until the server closes the stream. */
export async function readAll(stream: SseStream, timeoutMs = 30_000): Promise<SseEvent[]> {
  const deadline = Date.now() + timeoutMs;
  const events: SseEvent[] = [];
  for (;;) {
    const event = await stream.next(Math.max(1, deadline - Date.now()));
    if (!event) return events;
    events.push(event);
  }
}
