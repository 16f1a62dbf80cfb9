import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogWriter } from '../../activities/agent/log-writer';
import type { AttemptStore } from '../../src/store/attempt-store';

type Chunk = Parameters<AttemptStore['appendLog']>[0];

/** A store whose log writes are kept in order. */
function recordingStore(): { store: AttemptStore; chunks: Chunk[] } {
  const chunks: Chunk[] = [];
  const store = { appendLog: async (chunk: Chunk) => void chunks.push(chunk) } as unknown as AttemptStore;
  return { store, chunks };
}

describe('LogWriter', () => {
  it('keeps output in order, by stream', async () => {
    const { store, chunks } = recordingStore();
    const logs = new LogWriter(store, { taskId: 't' }, 1, assert.fail);
    logs.write('stdout', 'a');
    logs.write('stdout', 'b');
    logs.write('stderr', 'c');
    await logs.close();
    assert.deepEqual(
      chunks.map((c) => [c.seq, c.stream, c.data]),
      [
        [0, 'stdout', 'ab'],
        [1, 'stderr', 'c'],
      ],
    );
  });

  it('stores at most its limit, then one line saying the rest is not kept, and nothing after', async () => {
    const { store, chunks } = recordingStore();
    const logs = new LogWriter(store, { taskId: 't' }, 1, assert.fail, 100);
    for (let i = 0; i < 1000; i += 1) logs.write('stdout', 'x'.repeat(60));
    logs.write('stderr', 'late');
    await logs.close();
    const stored = chunks.map((c) => c.data).join('');
    assert.ok(stored.startsWith(`${'x'.repeat(100)}\n[atelier: output past 100 characters is not kept`), stored);
    assert.equal(stored.match(/x/g)?.length, 100);
    assert.ok(!stored.includes('late'));
  });
});
