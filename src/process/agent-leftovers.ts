import { readdirSync, readFileSync } from 'node:fs';
import { readProcStat, type ProcStat } from './proc-stat';
import { processGroupOf } from './process-group';

/**
 * The environment variable by which infra/spawner marks each agent's processes (`tagVariable` in
 * infra/spawner/leftovers.go): `agentTag(<helper pid>, <request id>)`, inherited by the agent's children.
 */
export const AGENT_TAG_VARIABLE = 'ATELIER_AGENT_TAG';

/** The tag of the agent of request `id` to helper `helperPid` (agentTag in infra/spawner/leftovers.go). */
export const agentTag = (helperPid: number, id: number): string => `${helperPid}.${id}`;

/** How many times withTag reads an empty environment again before it takes it for one. */
const EMPTY_ENVIRON_REREADS = 5;

/**
 * Those of `pids` whose environment holds `entry` (`ATELIER_AGENT_TAG=<tag>`). As hasTag in
 * infra/spawner/leftovers.go: a process in the middle of an exec shows an empty environment for a
 * moment (/proc reads the memory it is leaving), so a daemon that execs its program as the helper dies
 * would escape; an empty read is therefore read again up to 5 times, 2 ms apart (all such processes
 * at once, so that a machine's many kernel threads, whose environment is empty, cost 10 ms, not 10 ms
 * each). `read` reads a /proc file (replaced by tests); one that throws is gone or not ours to read.
 */
export async function withTag(
  pids: readonly number[],
  entry: string,
  read: (path: string) => string = (path) => readFileSync(path, 'latin1'),
): Promise<Set<number>> {
  const tagged = new Set<number>();
  let empty = [...pids];
  for (let retry = 0; empty.length > 0; retry++) {
    if (retry > 0) await new Promise((resolve) => setTimeout(resolve, 2));
    empty = empty.filter((pid) => {
      let environ: string;
      try {
        environ = read(`/proc/${pid}/environ`);
      } catch {
        return false; // gone already, or not ours to read
      }
      if (environ.split('\0').includes(entry)) tagged.add(pid);
      return environ === '' && retry < EMPTY_ENVIRON_REREADS;
    });
  }
  return tagged;
}

/**
 * The processes alive (no zombies) of session `session` and those whose environment holds `tag` as
 * the agent tag, with all their descendants; never the worker.
 */
async function agentProcesses(session: number | undefined, tag: string | undefined): Promise<ProcStat[]> {
  const procs = new Map<number, ProcStat>();
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return []; // no /proc: nothing to find
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const proc = readProcStat(Number(entry));
    if (proc === undefined) continue;
    procs.set(proc.pid, proc);
    const siblings = children.get(proc.ppid);
    if (siblings) siblings.push(proc.pid);
    else children.set(proc.ppid, [proc.pid]);
  }
  const tagEntry = tag === undefined ? undefined : `${AGENT_TAG_VARIABLE}=${tag}`;
  const candidates = [...procs.values()].filter((p) => p.state !== 'Z' && p.pid !== process.pid);
  const inSession = candidates.filter((p) => p.session === session).map((p) => p.pid);
  const others = candidates.filter((p) => p.session !== session).map((p) => p.pid);
  const tagged = tagEntry === undefined ? [] : await withTag(others, tagEntry);
  const queue = [...inSession, ...tagged];
  const seen = new Set<number>();
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (seen.has(pid) || pid === process.pid) continue;
    seen.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...seen].map((pid) => procs.get(pid)).filter((p): p is ProcStat => p !== undefined && p.state !== 'Z');
}

/** How long killAgentLeftovers reads /proc again and kills what it finds. */
const LEFTOVERS_DEADLINE_MS = 2_000;

/**
 * Kills what is left of a dead helper's agent: the processes of its session (`session`: the agent's
 * pid, once known to be the agent's, by its start time or no process having it; a session's id is taken
 * by no new process or session while one of its members lives), and those whose environment holds its
 * tag (`tag`: the helper's pid and the request's id), with all their descendants and the process group
 * of each, never the worker's own. As the helper would have done at the agent's exit
 * (infra/spawner/leftovers.go), it reads /proc again until a read finds none of them alive (a process
 * forked during a kill is found by the next read), for up to 2 s.
 */
export async function killAgentLeftovers(session: number | undefined, tag: string | undefined): Promise<void> {
  const own = processGroupOf(process.pid);
  for (const deadline = Date.now() + LEFTOVERS_DEADLINE_MS; ;) {
    const alive = await agentProcesses(session, tag);
    if (alive.length === 0 || Date.now() > deadline) return;
    for (const { pid, pgrp } of alive) {
      if (pgrp !== own && pgrp > 1) signal(-pgrp);
      signal(pid);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function signal(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // Gone already.
  }
}
