/** A read's outcome: a failed read is a value too, so every collector of a scrape sees the same one. */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A read shared by everyone who asks within `ttlMs` of its start (the collectors of one scrape, and
 * scrapers close together). A failed read is forgotten once it has failed, so the next scrape tries again.
 */
export class CachedRead<T> {
  private cached: { at: number; result: Promise<ReadResult<T>> } | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly ttlMs: number,
  ) {}

  get(): Promise<ReadResult<T>> {
    if (this.cached && Date.now() - this.cached.at <= this.ttlMs) return this.cached.result;
    const entry = {
      at: Date.now(),
      result: this.read().then(
        (value): ReadResult<T> => ({ ok: true, value }),
        (error: unknown): ReadResult<T> => {
          if (this.cached === entry) this.cached = undefined;
          return { ok: false, error };
        },
      ),
    };
    this.cached = entry;
    return entry.result;
  }
}
