import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import {
  killHolders,
  signalGroup,
  type AgentProcess,
  type AgentProcessEvents,
  type SpawnAgent,
  type SpawnEnd,
} from './agent-process';
import { agentTag, killAgentLeftovers } from '../../src/process/agent-leftovers';
import { processAlive } from '../../src/process/process-alive';
import { processStartTicks } from '../../src/process/process-start-time';

/**
 * The version of the helper's protocol this worker speaks (infra/spawner/main.go, `protocolVersion`):
 * checked before a helper is used (src/workers/agent-spawn.ts).
 */
export const SPAWNER_PROTOCOL = 2;

/** A frame's header: type (1 byte), request id (4), payload length (4); see infra/spawner/main.go. */
const HEADER_BYTES = 9;

/** Signal names by number; the first of two aliases (SIGABRT, not SIGIOT), as Node names them. */
const SIGNAL_NAMES = new Map<number, string>();
for (const [name, number] of Object.entries(constants.signals))
  if (!SIGNAL_NAMES.has(number)) SIGNAL_NAMES.set(number, name);

interface Pending {
  events: AgentProcessEvents;
  pid?: number;
  /** When the agent started (processStartTicks), read when its pid arrived: which process has that pid. */
  startTicks?: string;
  /**
   * The agent's ends of its stdout and stderr, as the helper made them: a process that left its group
   * (a daemon) and holds them is killed by the helper, or, should the helper die, by the worker.
   */
  outputSockets?: Set<string>;
  /** How the process ended, once it has. */
  end?: SpawnEnd;
}

/**
 * Starts agent processes through `atelier-spawner` (infra/spawner), a small Go program the worker runs
 * as its child: it starts each agent with clone(CLONE_VM|CLONE_VFORK), which copies nothing of the
 * worker and does not block its event loop, where Node's child_process forks the whole worker (several
 * milliseconds of CPU per agent for a worker of 100 MB, and more under load). The helper relays each
 * agent's output, and signals agents' process groups for the worker: only while it has not reaped an
 * agent, so no signal meant for one reaches a process that took its pid since. The helper dies with the
 * worker and takes the agents with it; if it dies alone, its agents die too and their runs end as
 * killed by SIGKILL, the worker kills what left their groups holding their output, what carries their
 * tags, and what is left in their groups and sessions (unless another process has an agent's pid by
 * then), and the next spawn starts a new helper.
 */
export class AgentSpawner {
  private helper?: Helper;
  private nextId = 1;

  constructor(
    private readonly binary: string,
    private readonly onHelperExit: (reason: string) => void = () => undefined,
  ) {}

  readonly spawn: SpawnAgent = (request, events) => {
    const helper = (this.helper ??= this.startHelper());
    const id = this.nextId++;
    const entry: Pending = { events };
    helper.pending.set(id, entry);
    // While it has runs, the helper keeps the worker's event loop alive (a run may have no timer of its own).
    (helper.process.stdout as Socket | null)?.ref();
    const line = JSON.stringify({
      id,
      path: request.file,
      args: request.args,
      env: Object.entries(request.env).map(([k, v]) => `${k}=${v}`),
      dir: request.cwd ?? '',
      stdin: request.stdin ?? null,
      promptFile: request.promptFile ?? null,
      // Where the worker would write the prompt file: its TMPDIR (the helper has no environment).
      tmpDir: request.promptFile === undefined ? '' : tmpdir(),
      leavesNothing: request.leavesNothing === true,
    });
    helper.process.stdin?.write(`${line}\n`);
    return {
      killGroup: (signal) => {
        // Once the agent has exited, the helper has killed what it left in its group.
        if (!helper.pending.has(id) || entry.end !== undefined) return;
        // The helper sends it once the agent has started (it keeps one that comes before), if it still runs.
        helper.process.stdin?.write(`${JSON.stringify({ id, signal: constants.signals[signal] })}\n`);
      },
    } satisfies AgentProcess;
  };

  /** Closes the helper's input: it kills what still runs and exits. */
  close(): void {
    this.helper?.process.stdin?.end();
    this.helper = undefined;
  }

  private startHelper(): Helper {
    // In a session of its own, as the agents it starts are: a terminal's Ctrl-C to the worker's group
    // must not reach it (the worker drains its agents), and agents have no controlling terminal. With an
    // empty environment: each request carries its agent's, and an agent reading its parent's
    // (`/proc/$PPID/environ`) must not find the worker's secrets there.
    const child = spawn(this.binary, [String(process.pid)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
      env: {},
    });
    const helper: Helper = { process: child, pending: new Map() };
    let buffered: Buffer = Buffer.alloc(0);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered = dispatchFrames(buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]), helper.pending);
      if (helper.pending.size === 0) (child.stdout as Socket | null)?.unref();
    });
    child.stdin?.on('error', () => undefined);
    child.on('error', (err) => this.lost(helper, `could not run ${this.binary}: ${err.message}`));
    // After its output: frames it wrote before it ended are read first.
    child.on('close', (code, signal) => this.lost(helper, `exited (${code ?? signal})`));
    // The helper must not keep an idle worker alive.
    child.unref();
    (child.stdin as Socket | null)?.unref();
    (child.stdout as Socket | null)?.unref();
    return helper;
  }

  /**
   * Ends the runs a dead helper leaves. Its agents died with it (parent-death signal), unless they had
   * exited already; a run it had not started yet could not start.
   */
  private lost(helper: Helper, reason: string): void {
    if (this.helper === helper) this.helper = undefined;
    if (helper.pending.size === 0) return;
    this.onHelperExit(reason);
    // The helper would have killed what left its agents' groups holding their output: the worker does,
    // in one look through the processes.
    killHolders(new Set([...helper.pending.values()].flatMap((entry) => [...(entry.outputSockets ?? [])])));
    for (const [id, entry] of helper.pending) {
      helper.pending.delete(id);
      const { pid } = entry;
      if (pid === undefined) {
        entry.events.close({ kind: 'spawn_failed', code: 'ESPAWNER', message: `the agent spawner ${reason}` });
        continue;
      }
      // An agent known to have exited was reaped: its pid, and its group's id, may be another's by now.
      if (entry.end !== undefined) {
        entry.events.close(entry.end);
        continue;
      }
      entry.events.exit();
      // The helper's tag for the agent's processes (agentTag in infra/spawner/leftovers.go).
      const tag = helper.process.pid === undefined ? undefined : agentTag(helper.process.pid, id);
      const now = processStartTicks(pid);
      // Another process has the agent's pid (it died with the helper, was reaped, and the pid passed on):
      // the group and session of that id, if any, are that process's. What carries the agent's tag is not.
      if (now !== undefined && now !== entry.startTicks) {
        void killAgentLeftovers(undefined, tag).then(() =>
          entry.events.close({ kind: 'signalled', signal: 'SIGKILL' }),
        );
        continue;
      }
      // The agent, or, with no process of its pid, what is left in its group: a pid is not given to a
      // new process while a group of that id has members.
      signalGroup(pid, 'SIGKILL');
      // What left its group: the rest of its session (whose id no other session takes while one of its
      // members lives), and what carries its tag, each with its group and descendants.
      // A run ends only once its agent has: SIGKILL takes effect when the agent is next scheduled.
      void killAgentLeftovers(pid, tag)
        .then(() => untilGone(pid))
        .then(() => entry.events.close({ kind: 'signalled', signal: 'SIGKILL' }));
    }
  }
}

/** One running helper process and the agents it started that have not closed yet. */
interface Helper {
  process: ChildProcess;
  pending: Map<number, Pending>;
}

/** Hands every whole frame in `buffered` to its agent's events; returns what is left of a frame cut short. */
function dispatchFrames(buffered: Buffer, pending: Map<number, Pending>): Buffer {
  let offset = 0;
  while (buffered.length - offset >= HEADER_BYTES) {
    const length = buffered.readUInt32BE(offset + 5);
    if (buffered.length - offset < HEADER_BYTES + length) break;
    const kind = String.fromCharCode(buffered[offset] as number);
    const id = buffered.readUInt32BE(offset + 1);
    const payload = buffered.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
    offset += HEADER_BYTES + length;
    const entry = pending.get(id);
    if (entry) dispatch(kind, id, payload, entry, pending);
  }
  return buffered.subarray(offset);
}

function dispatch(kind: string, id: number, payload: Buffer, entry: Pending, pending: Map<number, Pending>): void {
  switch (kind) {
    case 'P': {
      entry.pid = payload.readUInt32BE(0);
      entry.startTicks = processStartTicks(entry.pid);
      entry.outputSockets = new Set(JSON.parse(payload.subarray(4).toString()) as string[]);
      return;
    }
    case 'O':
    case 'E':
      entry.events.output(kind === 'O' ? 'stdout' : 'stderr', payload);
      return;
    case 'X':
      entry.end = endOf(JSON.parse(payload.toString()) as { code?: number; signal?: number });
      entry.events.exit();
      return;
    case 'C':
      pending.delete(id);
      entry.events.close(entry.end ?? { kind: 'exited', exitCode: -1 });
      return;
    case 'F': {
      // A start that failed has no pid: a failure after the start is no frame of this protocol.
      if (entry.pid !== undefined) return;
      pending.delete(id);
      const { code, message } = JSON.parse(payload.toString()) as { code: string; message: string };
      entry.events.close({ kind: 'spawn_failed', code, message });
      return;
    }
    default:
      return;
  }
}

/** How long a killed agent may take to die before its run is ended anyway. */
export const DEATH_DEADLINE_MS = 5000;

/** Resolves once `pid` has exited (gone, or a zombie its new parent has yet to reap), or at the deadline. */
async function untilGone(pid: number): Promise<void> {
  const deadline = Date.now() + DEATH_DEADLINE_MS;
  while (Date.now() < deadline && processAlive(pid)) await new Promise((r) => setTimeout(r, 10));
}

function endOf(status: { code?: number; signal?: number }): SpawnEnd {
  if (status.signal !== undefined)
    return { kind: 'signalled', signal: SIGNAL_NAMES.get(status.signal) ?? `SIG${status.signal}` };
  return { kind: 'exited', exitCode: status.code ?? -1 };
}
