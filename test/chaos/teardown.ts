/**
 * What a chaos environment has set up so far, undone in reverse order: every step runs even when one
 * before it throws (a failing stop must not leave the rest running), and the whole undo runs once,
 * however often it is asked for (by the scenario's end and by a stop signal at the same time, say).
 */
export class Teardown {
  private readonly steps: { what: string; undo: () => unknown }[] = [];
  private running?: Promise<void>;

  /** `undo` is run by `run`, after every step added later; `what` names it in a failure. */
  add(what: string, undo: () => unknown): void {
    this.steps.push({ what, undo });
  }

  run(): Promise<void> {
    this.running ??= this.undoAll();
    return this.running;
  }

  private async undoAll(): Promise<void> {
    const failures: string[] = [];
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        await step.undo();
      } catch (err) {
        failures.push(`${step.what}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`could not ${failures.join('; ')}`);
  }
}
