import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from './api-client';
import { between, errorText, fitLine } from './format';
import { printable } from './printable';
import type { Cli } from './context';
import { isTransient, MAX_RETRIES, retryDelayMs } from './retry';
import { TERMINAL_STATUSES, type TaskDoc } from './task-types';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const POLL_MS = 500;

/**
 * When the task's current run was asked for: its submission, or the `retry` or `reset` that started it
 * (the task's own `createdAt` stays that of its submission). The current run is the last of `runs`; from
 * an API that does not show runs, or when they were asked for, the task's submission.
 */
const currentRunSince = (task: TaskDoc): string => {
  const runs = task.runs ?? [];
  return runs[runs.length - 1]?.createdAt ?? task.createdAt;
};

const progressText = (task: TaskDoc): string => {
  const attempts = task.attempts ?? [];
  const current = attempts[attempts.length - 1];
  const parts = [`task ${task.id}`, task.status];
  if (current) parts.push(`attempt ${current.number}/${task.maxAttempts ?? '?'}`);
  if (current?.worker && task.status === 'running') parts.push(current.worker);
  parts.push(between(currentRunSince(task), task.finishedAt));
  return parts.join(' · ');
};

/**
 * Polls the task until it reaches a terminal status, showing a live progress line on stderr: redrawn
 * in place on a terminal, one line per change otherwise (logs, CI). Returns the final task. A restarting
 * API (refused connections, a proxy's 502–504) is polled again after 1 s, 2 s, 4 s…, up to MAX_RETRIES
 * failures in a row. Rejects once `signal` aborts (an AbortError, or the error of a request it cut short).
 */
export async function waitForTask(cli: Cli, id: string, signal?: AbortSignal): Promise<TaskDoc> {
  const tty = cli.io.stderr.isTTY === true && !cli.json;
  // The clearing sequence clears one row: the line is cut to the terminal's width (read anew, it may change).
  const columns = (): number => cli.io.stderr.columns ?? 80;
  let frame = 0;
  let lastShown = '';
  let failures = 0;
  /** A progress line is on the terminal without its line feed. */
  let lineOpen = false;
  // Stopped while it waits (Ctrl-C, --wait-timeout), the line is ended, as before an error.
  const pause = async (ms: number): Promise<void> => {
    try {
      await delay(ms, undefined, { signal });
    } catch (err) {
      if (lineOpen) cli.io.stderr.write('\n');
      throw err;
    }
  };
  for (;;) {
    let task: TaskDoc;
    try {
      task = await cli.api.json<TaskDoc>('GET', `/v1/tasks/${id}`, { signal });
      failures = 0;
    } catch (err) {
      if (!isTransient(err) || failures >= MAX_RETRIES || signal?.aborted) {
        // The error goes on a line of its own, not after the progress line.
        if (lineOpen) cli.io.stderr.write('\n');
        throw err;
      }
      failures += 1;
      const wait = retryDelayMs(failures);
      const why = err instanceof ApiError ? `it answered ${err.status}` : 'no connection';
      const line = `the API is away (${why}); task ${id} goes on; asking again in ${wait / 1000} s`;
      if (tty) cli.io.stderr.write(`\r\x1b[2K${fitLine(line, columns())}`);
      else cli.note(line);
      lineOpen = tty;
      lastShown = ''; // the status again once the API is back
      await pause(wait);
      continue;
    }
    const done = TERMINAL_STATUSES.has(task.status);
    if (tty) {
      const spinner = done ? (task.status === 'succeeded' ? '✔' : '✖') : SPINNER[frame++ % SPINNER.length];
      const shown = fitLine(`${spinner} ${printable(progressText(task))}`, columns());
      cli.io.stderr.write(`\r\x1b[2K${shown}${done ? '\n' : ''}`);
      lineOpen = !done;
    } else if (!cli.json) {
      // Without a terminal, a line per change of status or attempt, not per poll.
      const key = `${task.status}/${task.attempts?.length ?? 0}`;
      if (key !== lastShown) cli.note(progressText(task));
      lastShown = key;
    }
    if (done) return task;
    await pause(POLL_MS);
  }
}

/**
 * Following a task failed once it was submitted (or its new run started): the API went away for longer
 * than the retries, or answered an error. The task goes on, so this must not read as a failed submission.
 */
export class WaitFailed extends Error {
  constructor(
    readonly taskId: string,
    cause: unknown,
  ) {
    super(`stopped waiting for task ${taskId}, which was submitted and goes on`, { cause });
    this.name = 'WaitFailed';
  }
}

/**
 * The last words of `--wait`: the output on success (ended with a line feed on a terminal), the error
 * otherwise.
 */
export function reportOutcome(cli: Cli, task: TaskDoc): void {
  if (cli.json) {
    cli.printJson(task);
    return;
  }
  if (task.status === 'succeeded') {
    cli.outData(task.result?.output ?? '');
    cli.endData();
    return;
  }
  cli.note(`task ${task.id} ${task.status}: ${task.error ? errorText(task.status, task.error) : 'no error recorded'}`);
}
