/** Exit codes of `atelier`, distinct so that scripts can tell the outcomes apart. */
export const EXIT = {
  /** Done; with `--wait`, the task succeeded. */
  ok: 0,
  /** The request failed: the API answered with an error, or could not be reached. */
  error: 1,
  /** Bad usage: an unknown command or option, a missing argument. */
  usage: 2,
  /** With `--wait`: the task failed. */
  taskFailed: 3,
  /** With `--wait`: the task was cancelled. */
  taskCancelled: 4,
  /** `replay`: a history does not replay against the current workflow code. */
  replayFailed: 5,
  /** With `--wait`: the task was submitted, but following it failed (the API went away); the task goes on. */
  waitFailed: 6,
  /** `--wait-timeout` ran out before the task ended; the task goes on. */
  waitTimedOut: 7,
  /** Interrupted (Ctrl-C) while waiting; the task goes on. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code for a task's final status, as `--wait` reports it. */
export const exitForStatus = (status: string): ExitCode =>
  status === 'succeeded' ? EXIT.ok : status === 'cancelled' ? EXIT.taskCancelled : EXIT.taskFailed;
