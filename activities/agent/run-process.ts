import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { parentDeathPrefix } from '../../src/process/parent-death-signal';
import type { Invocation } from './build-invocation';
import { resolveProgram } from './resolve-program';

export type OutputStream = 'stdout' | 'stderr';

/**
 * The agent worker cut off from Temporal (temporal-contact.ts): Temporal will soon take the attempt for
 * lost and run the next one elsewhere, so the agent must be gone by then.
 */
export interface CutOff {
  /** Aborts when the worker is cut off. */
  readonly signal: AbortSignal;
  /** How long the agent may still take to go, at most (its kill grace is cut to it). */
  killGraceMs(): number;
}

export interface RunProcessOptions {
  invocation: Invocation;
  cwd?: string;
  timeoutMs: number;
  /** Kill the run when it prints nothing (stdout or stderr) for this long: class `stalled`. */
  idleTimeoutMs?: number;
  killGraceMs: number;
  /** Aborting kills the process group (TERM, then KILL after the grace period). */
  signal: AbortSignal;
  /** Kills the process group too, within what is left of the time (class `crash`). */
  cutOff?: CutOff;
  onOutput: (stream: OutputStream, text: string) => void;
}

export type ProcessEnd =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'signalled'; signal: string }
  | { kind: 'timed_out' }
  | { kind: 'stalled' }
  | { kind: 'aborted' }
  | { kind: 'cut_off' }
  | { kind: 'spawn_failed'; code: string; message: string };

/** A worker that dies, even by SIGKILL, takes its agents with it. */
const PDEATHSIG_WRAPPER = parentDeathPrefix('KILL');

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Runs one agent process: argv only, its own process group, the prompt written to stdin and stdin
 * closed (agents wait forever on an open pipe). Timeout and abort kill the whole group, TERM first,
 * KILL after `killGraceMs`; the promise settles only once the process has exited, so no run outlives it.
 */
export function runProcess(opts: RunProcessOptions): Promise<ProcessEnd> {
  const { invocation } = opts;
  const program = resolveProgram(invocation.file, invocation.env.PATH, process.cwd());
  if (program === undefined) {
    return Promise.resolve({
      kind: 'spawn_failed',
      code: 'ENOENT',
      message: `agent program not found: ${invocation.file}`,
    });
  }
  const argv = [...PDEATHSIG_WRAPPER, program, ...invocation.args];
  return new Promise((resolve) => {
    let stopReason: 'timed_out' | 'stalled' | 'aborted' | 'cut_off' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn(argv[0] as string, argv.slice(1), {
      cwd: opts.cwd,
      env: invocation.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });

    const stop = (reason: 'timed_out' | 'stalled' | 'aborted' | 'cut_off', graceMs = opts.killGraceMs): void => {
      if (child.pid === undefined) return;
      if (stopReason) {
        // Already stopping, but a cut-off worker has no time for the rest of the grace.
        if (reason === 'cut_off') killGroup(child.pid, 'SIGKILL');
        return;
      }
      stopReason = reason;
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid as number, 'SIGKILL'), graceMs);
    };
    const timeout = setTimeout(() => stop('timed_out'), opts.timeoutMs);
    // The idle limit restarts with every chunk of output: only silence kills, however long the run.
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      if (opts.idleTimeoutMs === undefined || stopReason) return;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => stop('stalled'), opts.idleTimeoutMs);
    };
    armIdle();
    const onAbort = (): void => stop('aborted');
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
    const cutOff = opts.cutOff;
    const onCutOff = (): void => stop('cut_off', Math.min(opts.killGraceMs, cutOff?.killGraceMs() ?? 0));
    const cutOffSignal = cutOff?.signal;
    if (cutOffSignal?.aborted) onCutOff();
    else cutOffSignal?.addEventListener('abort', onCutOff, { once: true });

    for (const stream of ['stdout', 'stderr'] as const) {
      const decoder = new StringDecoder('utf8');
      child[stream].on('data', (chunk: Buffer) => {
        armIdle();
        const text = decoder.write(chunk);
        if (text) opts.onOutput(stream, text);
      });
      child[stream].on('end', () => {
        const rest = decoder.end();
        if (rest) opts.onOutput(stream, rest);
      });
    }
    // An agent that exits without reading its prompt closes the pipe: that is its business, not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(invocation.stdin);

    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    // Anything the agent left in its group dies with it; that also closes pipes a grandchild still holds.
    child.on('exit', () => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    });
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      if (idleTimer) clearTimeout(idleTimer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal.removeEventListener('abort', onAbort);
      cutOffSignal?.removeEventListener('abort', onCutOff);
      if (spawnError && child.pid === undefined) {
        resolve({ kind: 'spawn_failed', code: spawnError.code ?? 'UNKNOWN', message: spawnError.message });
      } else if (stopReason) {
        resolve({ kind: stopReason });
      } else if (signal) {
        resolve({ kind: 'signalled', signal });
      } else {
        resolve({ kind: 'exited', exitCode: code ?? -1 });
      }
    });
  });
}
