/** A read's outcome: a failed read is a value too, so every collector of a scrape sees the same one. */
export type ReadResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A read shared by everyone who asks while it runs and for `ttlMs` after it ended (the collectors of
 * one scrape, and scrapers close together). However slow the read, one runs at a time: scrapes that come
 * while it runs wait for it rather than start another (on a large table, copies would pile up and take
 * the pool's connections). A failed read is forgotten once it has failed, so the next scrape tries again.
 */
export class CachedRead<T> {
  private cached: { endedAt: number | undefined; result: Promise<ReadResult<T>> } | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly ttlMs: number,
  ) {}

  get(): Promise<ReadResult<T>> {
    const cached = this.cached;
    if (cached && (cached.endedAt === undefined || Date.now() - cached.endedAt <= this.ttlMs)) return cached.result;
    const entry: NonNullable<typeof this.cached> = {
      endedAt: undefined,
      result: this.read().then(
        (value): ReadResult<T> => {
          entry.endedAt = Date.now();
          return { ok: true, value };
        },
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
