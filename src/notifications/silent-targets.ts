/** How long a URL that did not answer a delivery in time is sent nothing before one delivery tries it again. */
export const HOLD_OFF_MS = 30_000;

/**
 * The webhook URLs that did not answer a delivery within the timeout (a receiver behind a firewall
 * that drops, say). Each is held off for a while: its deliveries are not tried, so they do not each
 * wait out the timeout while the other URLs' deliveries of the round wait for them. Then one delivery
 * at a time tries it; any answer in time ends the hold-off, another timeout renews it.
 */
export class SilentTargets {
  /** Held-off URLs by key: until when, and since when one delivery tries one again (undefined: none does). */
  private readonly held = new Map<string, { until: number; probingSince?: number }>();

  constructor(
    /** How long a try takes at most (the request timeout): a try under way holds the others off that long. */
    private readonly tryMs: number,
    readonly holdOffMs = HOLD_OFF_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Undefined: try the URL of `key` now (if it was held off, this try is the one that tries it again).
   * Else how long, in ms, it stays held off at least.
   */
  heldOffMs(key: string): number | undefined {
    const held = this.held.get(key);
    if (!held) return undefined;
    const now = this.now();
    if (held.probingSince !== undefined) return Math.max(held.probingSince + this.tryMs - now, 0);
    if (held.until > now) return held.until - now;
    held.probingSince = now;
    return undefined;
  }

  /** After a try of the URL of `key`: whether it answered in time. True when a hold-off begins. */
  tried(key: string, answeredInTime: boolean): boolean {
    if (answeredInTime) {
      this.held.delete(key);
      return false;
    }
    const began = !this.held.has(key);
    this.held.set(key, { until: this.now() + this.holdOffMs });
    return began;
  }
}
