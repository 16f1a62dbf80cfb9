import { ServiceUnavailableException } from '@nestjs/common';

/** A 503 for a call a full ConcurrencyCap refused; `Retry-After` says when to try again. */
export class AtCapacityException extends ServiceUnavailableException {
  constructor(
    what: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`too many ${what} under way on this API replica; try again in ${retryAfterSeconds} s`);
  }
}

/**
 * Runs at most `max` calls at once in this process; one more is refused at once (AtCapacityException),
 * not queued: a client told to come back holds nothing meanwhile.
 */
export class ConcurrencyCap {
  private underWay = 0;

  constructor(
    private readonly max: number,
    /** What the calls are, plural, for the refusal's message. */
    private readonly what: string,
    private readonly retryAfterSeconds: number,
  ) {}

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.underWay >= this.max) throw new AtCapacityException(this.what, this.retryAfterSeconds);
    this.underWay += 1;
    try {
      return await call();
    } finally {
      this.underWay -= 1;
    }
  }
}
