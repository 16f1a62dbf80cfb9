import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSse, SseIdle, type SseEvent } from '../../src/cli/sse';

/** A stream that sends `chunks`, then nothing more, never closing; `cancelled` once its reader cancels it. */
function stalledAfter(chunks: string[]): { body: ReadableStream<Uint8Array>; cancelled: Promise<void> } {
  let onCancel = (): void => undefined;
  const cancelled = new Promise<void>((resolve) => (onCancel = resolve));
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
    },
    cancel: () => onCancel(),
  });
  return { body, cancelled };
}

describe('readSse', () => {
  it('reads events across chunks, skipping comments', async () => {
    const { body } = stalledAfter([
      'id: 1.1.1\nevent: log\nda',
      'ta: {"a":1}\n\n: keep-alive\n\nevent: end\ndata: x\n\n',
    ]);
    const events: SseEvent[] = [];
    for await (const event of readSse(body, 200)) {
      events.push(event);
      if (event.event === 'end') break;
    }
    assert.deepEqual(events, [
      { event: 'log', data: '{"a":1}', id: '1.1.1' },
      { event: 'end', data: 'x', id: '1.1.1' },
    ]);
  });

  it('takes a stream that sends nothing for the idle limit for dead: it cancels it and throws', async () => {
    const { body, cancelled } = stalledAfter(['event: log\ndata: first\n\n']);
    const events: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const event of readSse(body, 100)) events.push(event.data);
      })(),
      (err: unknown) => err instanceof SseIdle && /sent nothing for 0.1 s/.test(err.message),
    );
    assert.deepEqual(events, ['first']);
    await cancelled;
  });

  it('takes a \\r\\n split between two chunks for one line end, not two', async () => {
    const { body } = stalledAfter(['event: log\r\ndata: a\r', '\ndata: b\r\n\r', '\nevent: end\r\ndata: x\r\n\r\n']);
    const events: SseEvent[] = [];
    for await (const event of readSse(body, 200)) {
      events.push(event);
      if (event.event === 'end') break;
    }
    assert.deepEqual(events, [
      { event: 'log', data: 'a\nb', id: undefined },
      { event: 'end', data: 'x', id: undefined },
    ]);
  });

  it('ends a line at a \\r that ends the stream', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: last\r\r'));
        controller.close();
      },
    });
    const events: string[] = [];
    for await (const event of readSse(body)) events.push(event.data);
    assert.deepEqual(events, ['last']);
  });
});
