import type { LockActivities } from '../../activities';

/** A workflow worker's lock activities whose first lock request is held back until `letGo()`. */
export interface HeldLockRequest {
  /** Wraps a workflow worker's lock activities (`runWorkflowWorker`'s `wrapLocks`). */
  wrap: (real: LockActivities) => LockActivities;
  /** Resolves once the first request has reached its activity, and is being held. */
  reached: Promise<void>;
  /** Lets the held request go on to its lock manager. */
  letGo: () => void;
  /** Resolves once the held request has been delivered to its lock manager. */
  delivered: Promise<void>;
}

/**
 * Lock activities that hold the first request back, so that a task can be cancelled while its request
 * is on its way to a lock manager that does not run yet: the request then arrives after the release.
 */
export function holdFirstLockRequest(): HeldLockRequest {
  let reach!: () => void;
  let letGo!: () => void;
  let deliver!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const delivered = new Promise<void>((resolve) => (deliver = resolve));
  let held = false;
  const wrap = (real: LockActivities): LockActivities => ({
    ...real,
    async requestLocks(args) {
      if (held) return real.requestLocks(args);
      held = true;
      reach();
      await gate;
      await real.requestLocks(args);
      deliver();
    },
  });
  return { wrap, reached, letGo, delivered };
}
