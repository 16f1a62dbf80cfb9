import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { openUnlinkedFile } from '../../src/fs/unlinked-file';
import { parentDeathPrefix } from '../../src/process/parent-death-signal';
import { processGroupOf } from '../../src/process/process-group';
import { socketHolders, socketOf } from '../../src/process/socket-holders';
import type { OutputStream } from './parsers/types';

/** One agent process to start: an absolute program path and its arguments, never a shell. */
export interface SpawnRequest {
  file: string;
  args: string[];
  /** The agent's whole environment (nothing is inherited beside it). */
  env: Record<string, string>;
  cwd?: string;
  /** Written to the agent's stdin, which is then closed; unset: closed at once. */
  stdin?: string;
  /** Given to the agent as its file descriptor 3, a file read-only and unlinked (PROMPT_FILE_PATH). */
  promptFile?: string;
  /**
   * A program known to leave no process behind (git under Atelier's fixed settings): the spawner helper
   * does not look, at its exit, for what it left outside its group (infra/spawner/leftovers.go), a read
   * of every process's /proc entry.
   */
  leavesNothing?: boolean;
}

/** How a started (or not started) agent process ended. */
export type SpawnEnd =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'signalled'; signal: string }
  | { kind: 'spawn_failed'; code: string; message: string };

export interface AgentProcessEvents {
  output(stream: OutputStream, chunk: Buffer): void;
  /**
   * The agent's process exited, and what it left in its process group was killed with it; a process
   * that left the group (a daemon) may still hold its output open.
   */
  exit(): void;
  /** Nothing follows: the process exited (or never started) and its output is closed. */
  close(end: SpawnEnd): void;
}

/** A started agent process, in a process group of its own that dies with the worker. */
export interface AgentProcess {
  /**
   * Signals the agent's whole process group; one sent before it has started is sent once it has. No-op
   * once the agent has exited: its group was killed then, and its id may since have passed to another.
   */
  killGroup(signal: NodeJS.Signals): void;
}

/** Starts one agent process; its events arrive through `events`. */
export type SpawnAgent = (request: SpawnRequest, events: AgentProcessEvents) => AgentProcess;

/** Sends `signal` to process group `pgid`, if it still exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * The spawn failure code of a prompt file that could not be written (its temporary directory is full,
 * gone or read-only): the machine's failure, not the agent program's, so the attempt is retried.
 */
const PROMPT_FILE_FAILED = 'PROMPT_FILE';

function openPromptFile(prompt: string): number {
  try {
    return openUnlinkedFile(prompt);
  } catch (err) {
    throw Object.assign(new Error(`could not write the prompt file: ${(err as Error).message}`), {
      code: PROMPT_FILE_FAILED,
    });
  }
}

/** A worker that dies, even by SIGKILL, takes its agents with it. */
const PDEATHSIG_WRAPPER = parentDeathPrefix('KILL');

/**
 * What setpriv writes, and exits 127 (ENOENT) or 126 with, when it cannot exec the agent: a program
 * found on PATH can still fail so, a script whose `#!` interpreter is missing, say. The spawner helper
 * reports the same failure as a failed spawn; so is it reported here.
 */
const WRAPPER_EXEC_FAILED = /^setpriv: failed to execute .*: (.+)\n?$/;

/** The error codes of exec's failures, by the words setpriv gives them (the C locale's). */
const EXEC_ERRORS = new Map([
  ['No such file or directory', 'ENOENT'],
  ['Permission denied', 'EACCES'],
  ['Operation not permitted', 'EPERM'],
  ['Exec format error', 'ENOEXEC'],
  ['Not a directory', 'ENOTDIR'],
  ['Is a directory', 'EISDIR'],
  ['Too many levels of symbolic links', 'ELOOP'],
  ['Argument list too long', 'E2BIG'],
  ['Text file busy', 'ETXTBSY'],
  ['Cannot allocate memory', 'ENOMEM'],
  ['Resource temporarily unavailable', 'EAGAIN'],
]);

/**
 * The failed spawn the wrapper's exit says, if it is one: exit 127 or 126 and its message alone on
 * stderr. Its code is exec's, as the spawner helper reports it (UNKNOWN for words not known here: the
 * attempt is retried as a crash).
 */
function wrapperExecFailure(file: string, code: number | null, stdout: number, stderr: string): SpawnEnd | undefined {
  if (PDEATHSIG_WRAPPER.length === 0 || stdout > 0 || (code !== 127 && code !== 126)) return undefined;
  const reason = WRAPPER_EXEC_FAILED.exec(stderr)?.[1];
  if (reason === undefined) return undefined;
  const errno = EXEC_ERRORS.get(reason) ?? 'UNKNOWN';
  return { kind: 'spawn_failed', code: errno, message: `spawn ${file} ${errno} (${reason})` };
}

/**
 * After the agent has exited, its output stays open only while a process that left its process group
 * (a daemon, in a session of its own) holds it: that process is killed after this long, and the output
 * closed on the worker's side `KILL_GRACE_MS` later whatever happens (as infra/spawner does).
 */
const OUTPUT_GRACE_MS = 2_000;
const KILL_GRACE_MS = 1_000;

/**
 * Kills the processes holding `sockets`, each with its process group: a daemon's session and group,
 * which it need not lead (one that forked again after setsid), never the worker's own.
 */
export function killHolders(sockets: ReadonlySet<string>): void {
  const own = processGroupOf(process.pid);
  for (const pid of socketHolders(sockets)) {
    const group = processGroupOf(pid);
    if (group !== undefined && group !== own && group > 1) signalGroup(group, 'SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Spawns the agent from the worker itself (Node's child_process), through `setpriv --pdeathsig`: the
 * way without the spawner helper (agent-spawner.ts), where Go is not at hand.
 */
export const spawnDirectly: SpawnAgent = (request, events) => {
  const argv = [...PDEATHSIG_WRAPPER, request.file, ...request.args];
  // The agent's file descriptor 3; the worker's own copy is closed once the agent holds it.
  const promptFile = request.promptFile === undefined ? [] : [openPromptFile(request.promptFile)];
  let child: ChildProcess;
  try {
    child = spawn(argv[0] as string, argv.slice(1), {
      cwd: request.cwd,
      env: request.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', ...promptFile],
      windowsHide: true,
    });
  } finally {
    for (const fd of promptFile) closeSync(fd);
  }
  let exited = false;
  let spawnError: NodeJS.ErrnoException | undefined;
  // The agent's ends of its output, read while it runs: what a daemon it leaves behind would hold.
  const pid = child.pid;
  const outputSockets = new Set(
    pid === undefined ? [] : [1, 2].map((fd) => socketOf(pid, fd)).filter((s) => s !== undefined),
  );
  let outputTimer: NodeJS.Timeout | undefined;
  child.on('error', (err: NodeJS.ErrnoException) => {
    spawnError = err;
  });
  // Out of file descriptors (EMFILE, ENFILE), Node makes no pipes, and the 'error' and 'close' above and
  // below report the failed spawn.
  const { stdin, stdout, stderr } = child;
  // Enough of the output to tell the wrapper's own failure to exec the agent (wrapperExecFailure).
  let stdoutBytes = 0;
  let stderrStart = '';
  stdout?.on('data', (chunk: Buffer) => {
    stdoutBytes += chunk.length;
    events.output('stdout', chunk);
  });
  stderr?.on('data', (chunk: Buffer) => {
    if (stderrStart.length < 4096) stderrStart += chunk.toString('utf8', 0, 4096);
    events.output('stderr', chunk);
  });
  // An agent that exits without reading its prompt closes the pipe: that is its business, not an error.
  stdin?.on('error', () => undefined);
  stdin?.end(request.stdin);
  child.on('exit', () => {
    exited = true;
    // Node has reaped the agent already, so its group's id is free once the group is empty: killed now,
    // at once, as close to the reap as the worker gets, and never again after.
    if (pid !== undefined) signalGroup(pid, 'SIGKILL');
    events.exit();
    outputTimer = setTimeout(() => {
      killHolders(outputSockets);
      outputTimer = setTimeout(() => {
        stdout?.destroy();
        stderr?.destroy();
      }, KILL_GRACE_MS);
    }, OUTPUT_GRACE_MS);
  });
  child.on('close', (code, signal) => {
    exited = true;
    clearTimeout(outputTimer);
    if (spawnError && child.pid === undefined) {
      events.close({ kind: 'spawn_failed', code: spawnError.code ?? 'UNKNOWN', message: spawnError.message });
    } else if (signal) {
      events.close({ kind: 'signalled', signal });
    } else {
      events.close(
        wrapperExecFailure(request.file, code, stdoutBytes, stderrStart) ?? { kind: 'exited', exitCode: code ?? -1 },
      );
    }
  });
  return {
    killGroup: (signal) => {
      if (!exited && pid !== undefined) signalGroup(pid, signal);
    },
  };
};
