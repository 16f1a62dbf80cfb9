/**
 * Runs `run` every `intervalMs` (from the end of one run to the start of the next, so runs never
 * overlap) until stopped. The timer keeps no process alive; a failed run goes to `onError`, and the
 * next one comes as usual.
 */
export class PeriodicRun {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private isStopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly run: () => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {}

  get stopped(): boolean {
    return this.isStopped;
  }

  start(): void {
    if (this.isStopped) return;
    this.timer = setTimeout(() => {
      this.running = this.run()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
          this.start();
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Starts no more runs; a run under way goes on, and sees `stopped`. */
  stop(): void {
    this.isStopped = true;
    clearTimeout(this.timer);
  }

  /** Resolves once the run under way, if any, has ended (say, before the database pool it uses closes). */
  async settled(): Promise<void> {
    await this.running;
  }
}
