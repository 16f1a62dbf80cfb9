import type { AttemptStore } from '../../src/store/attempt-store';
import type { OutputStream } from './parsers/types';

const FLUSH_INTERVAL_MS = 250;
const FLUSH_BYTES = 32 * 1024;
/** Output of one attempt kept in `task_logs`, in characters. */
export const LOG_LIMIT_CHARS = 64 * 1024 * 1024;
/**
 * Output of one attempt that may wait for the database, in characters. A worker runs many agents, and
 * while PostgreSQL restarts each one's output piles up here: past this, the oldest is dropped, so that
 * the worker does not run out of memory and take every agent on it down with it.
 */
export const WAITING_LIMIT_CHARS = 4 * 1024 * 1024;

const droppedNote = (chars: number): string =>
  `\n[atelier: ${chars} characters of output dropped here while the database was not taking them]\n`;

/**
 * Streams an attempt's output to PostgreSQL in ordered chunks, batched by time and size so a chatty
 * agent costs a few writes a second. Writes run one at a time; a failed write is logged and the run
 * goes on (the output is also kept for the attempt's final record). Output past `limit` characters is
 * not stored: a line says so instead, which bounds the table. What waits for a slow database is bounded
 * apart, by `waitingLimit`: past it the oldest output waiting is dropped (the newest is what a reader
 * of the log wants when it comes back), and a line in the log says how much, where.
 */
export class LogWriter {
  /** Output not yet handed to the store, oldest first; its first `due` entries are to be written now. */
  private waiting: { stream: OutputStream; data: string }[] = [];
  private due = 0;
  private waitingChars = 0;
  private sinceFlush = 0;
  /** Characters dropped just before the first entry waiting, not yet said in the log. */
  private dropped = 0;
  private seq = 0;
  private kept = 0;
  private full = false;
  /** A writer is draining the due entries; `writing` settles when the latest one is done. */
  private busy = false;
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: AttemptStore,
    private readonly task: { taskId: string; runId?: string },
    private readonly attempt: number,
    private readonly onError: (err: Error) => void,
    private readonly limit = LOG_LIMIT_CHARS,
    private readonly waitingLimit = WAITING_LIMIT_CHARS,
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
    // Dropped output counts too: the limit is a place in the output, past which nothing is stored.
    this.kept += data.length;
    const last = this.waiting[this.waiting.length - 1];
    // An entry already due keeps its size: one write takes what a flush found, and no more.
    if (last && last.stream === stream && this.waiting.length > this.due) last.data += data;
    else this.waiting.push({ stream, data });
    this.waitingChars += data.length;
    this.sinceFlush += data.length;
    this.dropOldest();
    if (this.sinceFlush >= FLUSH_BYTES) this.flush();
  }

  /** Flushes what is left and waits for every write. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.flush();
    await this.writing;
  }

  private flush(): void {
    this.sinceFlush = 0;
    this.due = this.waiting.length;
    if (this.due > 0 && !this.busy) {
      this.busy = true;
      this.writing = this.writeDue();
    }
  }

  /** Writes the due entries in order, one at a time, until none is left (flushes on the way add more). */
  private async writeDue(): Promise<void> {
    for (let next = this.waiting.shift(); next; next = this.due > 0 ? this.waiting.shift() : undefined) {
      this.due -= 1;
      this.waitingChars -= next.data.length;
      const droppedBefore = this.dropped;
      const data = droppedBefore > 0 ? droppedNote(droppedBefore) + next.data : next.data;
      this.dropped = 0;
      const chunk = { ...this.task, attempt: this.attempt, seq: this.seq++, stream: next.stream, data };
      try {
        await this.store.appendLog(chunk);
      } catch (err) {
        // The store gave up (it retries a while): this output is dropped too, and the next write says so.
        this.dropped += droppedBefore + next.data.length;
        this.onError(err as Error);
      }
    }
    this.busy = false;
  }

  /** Drops the oldest output waiting, whole entries then the start of one, down to `waitingLimit`. */
  private dropOldest(): void {
    while (this.waitingChars > this.waitingLimit) {
      const first = this.waiting[0];
      if (!first) return;
      const excess = this.waitingChars - this.waitingLimit;
      const cut = Math.min(excess, first.data.length);
      if (cut === first.data.length) {
        this.waiting.shift();
        if (this.due > 0) this.due -= 1;
      } else {
        first.data = first.data.slice(cut);
      }
      this.waitingChars -= cut;
      this.dropped += cut;
    }
  }
}
