import type { AttemptStore } from '../../src/store/attempt-store';
import type { OutputStream } from './parsers/types';

const FLUSH_INTERVAL_MS = 250;
const FLUSH_BYTES = 32 * 1024;

/**
 * Streams an attempt's output to PostgreSQL in ordered chunks, batched by time and size so a chatty
 * agent costs a few writes a second. Writes run one at a time; a failed write is logged and the run
 * goes on (the output is also kept for the attempt's final record).
 */
export class LogWriter {
  private pending: { stream: OutputStream; data: string }[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: AttemptStore,
    private readonly task: { taskId: string; runId?: string },
    private readonly attempt: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  write(stream: OutputStream, data: string): void {
    const last = this.pending[this.pending.length - 1];
    if (last && last.stream === stream) last.data += data;
    else this.pending.push({ stream, data });
    this.pendingBytes += data.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** Flushes what is left and waits for every write. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    await this.chain;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const { stream, data } of batch) {
      const chunk = { ...this.task, attempt: this.attempt, seq: this.seq++, stream, data };
      this.chain = this.chain.then(() => this.store.appendLog(chunk)).catch((err: Error) => this.onError(err));
    }
  }
}
