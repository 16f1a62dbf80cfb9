import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LOG_LIMIT_CHARS, LogWriter } from '../../activities/agent/log-writer';
import type { AttemptStore } from '../../src/store/attempt-store';
import { waitFor } from '../support/wait-for';

type Chunk = Parameters<AttemptStore['appendLog']>[0];

/** A store whose log writes are kept in order. */
function recordingStore(): { store: AttemptStore; chunks: Chunk[] } {
  const chunks: Chunk[] = [];
  const store = { appendLog: async (chunk: Chunk) => void chunks.push(chunk) } as unknown as AttemptStore;
  return { store, chunks };
}

/**
 * A store whose log writes hang until `release()`, as during a database restart; `stalled` settles when
 * the first write has begun. Every write is kept in the order it began.
 */
function stalledStore(): { store: AttemptStore; chunks: Chunk[]; stalled: Promise<void>; release: () => void } {
  const chunks: Chunk[] = [];
  let release = (): void => undefined;
  const back = new Promise<void>((resolve) => (release = resolve));
  let began = (): void => undefined;
  const stalled = new Promise<void>((resolve) => (began = resolve));
  const appendLog = async (chunk: Chunk): Promise<void> => {
    chunks.push(chunk);
    began();
    await back;
  };
  return { store: { appendLog } as unknown as AttemptStore, chunks, stalled, release };
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

  it('holds at most its waiting limit for a stalled database, dropping the oldest, and says so where', async () => {
    const db = stalledStore();
    const logs = new LogWriter(db.store, { taskId: 't' }, 1, assert.fail, LOG_LIMIT_CHARS, 1000);
    logs.write('stdout', 'before the outage\n');
    await db.stalled;
    const during = Array.from({ length: 1000 }, (_, i) => `line ${i}`.padEnd(59) + '\n').join('');
    for (let at = 0; at < during.length; at += 60) logs.write('stdout', during.slice(at, at + 60));
    db.release();
    await logs.close();
    assert.equal(db.chunks[0]?.data, 'before the outage\n');
    const dropped = during.length - 1000;
    assert.equal(
      db.chunks
        .slice(1)
        .map((c) => c.data)
        .join(''),
      `\n[atelier: ${dropped} characters of output dropped here while the database was not taking them]\n${during.slice(-1000)}`,
    );
    assert.deepEqual(
      db.chunks.map((c) => c.seq),
      db.chunks.map((_, i) => i),
    );
  });

  it('says where output went missing when the store gave up on a write', async () => {
    const chunks: Chunk[] = [];
    let failures = 1;
    const appendLog = async (chunk: Chunk): Promise<void> => {
      if (failures-- > 0) throw new Error('the database stayed away');
      chunks.push(chunk);
    };
    const errors: Error[] = [];
    const logs = new LogWriter({ appendLog } as unknown as AttemptStore, { taskId: 't' }, 1, (e) => errors.push(e));
    logs.write('stdout', 'lost\n');
    await waitFor('the write to fail', () => errors.length === 1);
    logs.write('stdout', 'kept\n');
    await logs.close();
    assert.equal(errors.length, 1);
    assert.equal(
      chunks.map((c) => c.data).join(''),
      '\n[atelier: 5 characters of output dropped here while the database was not taking them]\nkept\n',
    );
  });

  it('stops at its total limit though it dropped output while waiting', async () => {
    const db = stalledStore();
    const logs = new LogWriter(db.store, { taskId: 't' }, 1, assert.fail, 5000, 1000);
    logs.write('stdout', 'x');
    await db.stalled;
    for (let i = 0; i < 100; i += 1) logs.write('stdout', 'y'.repeat(100));
    db.release();
    await logs.close();
    const stored = db.chunks.map((c) => c.data).join('');
    assert.match(stored, /characters of output dropped here/);
    assert.match(stored, /output past 5000 characters is not kept/);
    assert.ok(stored.length < 2000, `${stored.length} characters stored`);
  });
});
