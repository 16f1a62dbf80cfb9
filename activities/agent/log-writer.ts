import type { AttemptStore } from '../../src/store/attempt-store';
import type { OutputStream } from './parsers/types';

const FLUSH_INTERVAL_MS = 250;
const FLUSH_BYTES = 32 * 1024;
/** Output of one attempt kept in `task_logs`, in characters. */
export const LOG_LIMIT_CHARS = 64 * 1024 * 1024;

/**
 * Streams an attempt's output to PostgreSQL in ordered chunks, batched by time and size so a chatty
 * agent costs a few writes a second. Writes run one at a time; a failed write is logged and the run
 * goes on (the output is also kept for the attempt's final record). Output past `limit` characters is
 * not stored: a line says so instead. That bounds both the table and what waits here for a slow
 * database, however much an agent prints.
 */
export class LogWriter {
  private pending: { stream: OutputStream; data: string }[] = [];
  private pendingBytes = 0;
  private seq = 0;
  private kept = 0;
  private full = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: AttemptStore,
    private readonly task: { taskId: string; runId?: string },
    private readonly attempt: number,
    private readonly onError: (err: Error) => void,
    private readonly limit = LOG_LIMIT_CHARS,
  ) {
    this.timer = setInterval(() => this.flush(), FLUSH_INTERVAL_MS);
  }

  write(stream: OutputStream, text: string): void {
    if (this.full) return;
    let data = text;
    if (this.kept + data.length > this.limit) {
      this.full = true;
      data =
        data.slice(0, this.limit - this.kept) +
        `\n[atelier: output past ${this.limit} characters is not kept in the log; the attempt's record keeps its tail]\n`;
    }
    this.kept += data.length;
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
