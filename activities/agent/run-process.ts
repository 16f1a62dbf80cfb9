import { StringDecoder } from 'node:string_decoder';
import { spawnDirectly, type AgentProcess, type SpawnAgent, type SpawnEnd } from './agent-process';
import type { Invocation } from './build-invocation';
import type { OutputStream } from './parsers/types';
import { resolveProgram } from './resolve-program';

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
  /** Aborting kills the process group (TERM, then KILL after the grace period; KILL at once while already stopping). */
  signal: AbortSignal;
  /** Kills the process group too, within what is left of the time (class `crash`). */
  cutOff?: CutOff;
  onOutput: (stream: OutputStream, text: string) => void;
  /** How the agent's process is started: through the worker's spawner helper, or directly. */
  spawn?: SpawnAgent;
}

export type ProcessEnd =
  SpawnEnd | { kind: 'timed_out' } | { kind: 'stalled' } | { kind: 'aborted' } | { kind: 'cut_off' };

/**
 * Runs one agent process: argv only, its own process group, the prompt written to stdin and stdin
 * closed (agents wait forever on an open pipe). Timeout and abort kill the whole group, TERM first,
 * KILL after `killGraceMs`; the promise settles only once the process has exited, so no run outlives it.
 * The run ends the way it ended first: a stop asked for once the agent has exited (while a process it
 * left behind still holds its output) changes nothing, so finished work is never taken for a timeout.
 */
export function runProcess(opts: RunProcessOptions): Promise<ProcessEnd> {
  // Stopped before it started (a cancel, a worker cut off while the attempt prepared): nothing is started,
  // so nothing of it can run on in the workdir. As a stop would, an abort wins over a cut-off.
  if (opts.signal.aborted) return Promise.resolve({ kind: 'aborted' });
  if (opts.cutOff?.signal.aborted) return Promise.resolve({ kind: 'cut_off' });
  const { invocation } = opts;
  const program = resolveProgram(invocation.file, invocation.env.PATH, process.cwd());
  if (program === undefined) {
    return Promise.resolve({
      kind: 'spawn_failed',
      code: 'ENOENT',
      message: `agent program not found: ${invocation.file}`,
    });
  }
  const spawn = opts.spawn ?? spawnDirectly;
  return new Promise((resolve) => {
    let stopReason: 'timed_out' | 'stalled' | 'aborted' | 'cut_off' | undefined;
    let exited = false;
    let killTimer: NodeJS.Timeout | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    let child: AgentProcess;
    /** The timeout and the idle limit have nothing left to stop once a stop is under way or the agent has exited. */
    const disarm = (): void => {
      clearTimeout(timeout);
      clearTimeout(idleTimer);
    };
    try {
      child = spawn(
        {
          file: program,
          args: invocation.args,
          env: invocation.env,
          cwd: opts.cwd,
          stdin: invocation.stdin,
          promptFile: invocation.promptFile,
        },
        {
          output: (stream, chunk) => {
            armIdle();
            const text = decoders[stream].write(chunk);
            if (text) opts.onOutput(stream, text);
          },
          // What the agent left in its group died with it (AgentProcessEvents): a KILL due has nothing left to kill.
          exit: () => {
            exited = true;
            disarm();
            clearTimeout(killTimer);
          },
          close: (end) => {
            disarm();
            clearTimeout(killTimer);
            opts.signal.removeEventListener('abort', onAbort);
            cutOffSignal?.removeEventListener('abort', onCutOff);
            for (const stream of ['stdout', 'stderr'] as const) {
              const rest = decoders[stream].end();
              if (rest) opts.onOutput(stream, rest);
            }
            resolve(end.kind !== 'spawn_failed' && stopReason ? { kind: stopReason } : end);
          },
        },
      );
    } catch (err) {
      // Node's child_process refuses some starts at once (an argument over the kernel's limit: E2BIG).
      const { code, message } = err as NodeJS.ErrnoException;
      resolve({ kind: 'spawn_failed', code: code ?? 'UNKNOWN', message });
      return;
    }

    const stop = (reason: 'timed_out' | 'stalled' | 'aborted' | 'cut_off', graceMs = opts.killGraceMs): void => {
      // Exited already: its output may still be draining, but the run's end is known, and its group is gone.
      if (exited) return;
      if (stopReason) {
        // Already stopping, and the agent has had its TERM: a cancel (Temporal may have given the attempt
        // up already) or a cut-off worker does not wait out the rest of the grace.
        child.killGroup('SIGKILL');
        return;
      }
      stopReason = reason;
      disarm();
      child.killGroup('SIGTERM');
      killTimer = setTimeout(() => child.killGroup('SIGKILL'), graceMs);
    };
    const timeout = setTimeout(() => stop('timed_out'), opts.timeoutMs);
    // The idle limit restarts with every chunk of output: only silence kills, however long the run.
    const armIdle = (): void => {
      if (opts.idleTimeoutMs === undefined || stopReason || exited) return;
      clearTimeout(idleTimer);
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
  });
}
