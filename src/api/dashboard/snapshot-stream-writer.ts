import type { Writable } from 'node:stream';
import type { DashboardSnapshot } from './snapshot';

const frame = (snapshot: DashboardSnapshot): string =>
  `id: ${snapshot.cursor}\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;

/**
 * Writes the dashboard's event stream without letting a reader that stops reading pile snapshots up in
 * memory: once the socket's buffer is full (`write()` answered false), snapshots are held back until
 * 'drain', and only the newest is then written. Each snapshot is the whole picture, so the skipped ones
 * lose nothing.
 */
export class SnapshotStreamWriter {
  private full = false;
  private pending: DashboardSnapshot | undefined;

  constructor(private readonly out: Writable) {}

  snapshot(snapshot: DashboardSnapshot): void {
    if (this.full) this.pending = snapshot;
    else this.write(frame(snapshot));
  }

  /** Text worth nothing late (the retry hint, keep-alive comments): dropped while the buffer is full. */
  writeIfRoom(text: string): void {
    if (!this.full) this.write(text);
  }

  private write(text: string): void {
    if (this.out.write(text)) return;
    this.full = true;
    this.out.once('drain', () => {
      this.full = false;
      const pending = this.pending;
      this.pending = undefined;
      if (pending) this.snapshot(pending);
    });
  }
}
