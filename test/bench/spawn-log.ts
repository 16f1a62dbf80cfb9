import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The agents' wrapper (test/bench/agents.yaml runs every bench agent under it). */
export const SPAWN_LOG_WRAPPER = resolve(__dirname, '../../../test/bench/spawn-log.sh');
/** The variable that names the log, passed to agents by the agents file's envPassthrough. */
export const SPAWN_LOG_VARIABLE = 'BENCH_SPAWN_LOG_PATH';

/** One agent execution as the wrapper logged it: its start, and its exit unless it was killed before logging one. */
export interface Spawn {
  pid: number;
  /** The task and attempt it ran for (ATELIER_TASK_ID, ATELIER_ATTEMPT); null when unset, or in a log of before the wrapper logged them. */
  taskId: string | null;
  attempt: number | null;
  startMs: number;
  exitMs: number | null;
  status: number | null;
}

/** bash's EPOCHREALTIME, in ms; in some locales its decimal point is a comma. */
const toMs = (time: string): number => Number(time.replace(',', '.')) * 1000;

/** A start line's task or attempt: "-" (unset) is null. */
const named = (field: string): string | null => (field === '-' ? null : field);

/**
 * The executions in a spawn log's text (a start line of an older log, without task and attempt: null
 * for both). A pid's `exit` line closes its latest `start`: a pid is given to another process only once
 * its process has exited, so a reused pid starts a new execution.
 */
export function parseSpawnLog(text: string): Spawn[] {
  const spawns: Spawn[] = [];
  const open = new Map<number, Spawn>();
  for (const line of text.split('\n')) {
    const [kind, pid, time, ...rest] = line.split(' ');
    if (kind === 'start') {
      const [taskId = null, attempt = null] = rest.map(named);
      const spawn: Spawn = {
        pid: Number(pid),
        taskId,
        attempt: attempt === null ? null : Number(attempt),
        startMs: toMs(time ?? ''),
        exitMs: null,
        status: null,
      };
      spawns.push(spawn);
      open.set(spawn.pid, spawn);
    } else if (kind === 'exit') {
      const spawn = open.get(Number(pid));
      if (spawn === undefined) throw new Error(`spawn log: an exit of ${pid} without its start`);
      spawn.exitMs = toMs(time ?? '');
      spawn.status = Number(rest[0]);
      open.delete(spawn.pid);
    } else if (line !== '') {
      throw new Error(`spawn log: unexpected line ${JSON.stringify(line)}`);
    }
  }
  return spawns;
}

/** The executions logged so far in `path` (none before the first agent has created it). */
export const readSpawnLog = (path: string): Spawn[] =>
  existsSync(path) ? parseSpawnLog(readFileSync(path, 'utf8')) : [];

/** The executions that started in [fromMs, toMs). */
export const spawnsBetween = (spawns: Spawn[], fromMs: number, toMs = Number.POSITIVE_INFINITY): Spawn[] =>
  spawns.filter((s) => s.startMs >= fromMs && s.startMs < toMs);

/** What the wrapper adds to each agent's run, against the same program started without it. */
export interface WrapperOverhead {
  /** Mean extra wall time of a start and exit, ms. */
  wallMs: number;
  /** Mean extra CPU time (the wrapper's own, and its two log writes), ms. */
  cpuMs: number;
  /** Runs of each, taken in turn. */
  runs: number;
}

const TICK_MS = 10;

/** CPU ms of this process's children that have been waited for (cutime + cstime of /proc/self/stat). */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  // cutime and cstime are fields 16 and 17 of /proc/<pid>/stat; fields[0] here is field 3.
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

/**
 * Times `true` started `runs` times directly and `runs` times through the wrapper, in turn, from this
 * process (nothing else of the benchmark running yet): the wrapper's cost per agent on this host.
 */
export function measureWrapperOverhead(runs = 200): WrapperOverhead {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-bench-wrapper-'));
  const env = { PATH: process.env.PATH, [SPAWN_LOG_VARIABLE]: join(dir, 'spawns.log') };
  const totals = { direct: { wall: 0, cpu: 0 }, wrapped: { wall: 0, cpu: 0 } };
  const time = (total: { wall: number; cpu: number }, file: string, args: string[]): void => {
    const cpu = childrenCpuMs();
    const start = performance.now();
    const res = spawnSync(file, args, { env, stdio: 'ignore' });
    total.wall += performance.now() - start;
    total.cpu += childrenCpuMs() - cpu;
    if (res.status !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${res.status ?? res.signal}`);
  };
  try {
    for (let i = 0; i < runs; i++) {
      time(totals.direct, 'true', []);
      time(totals.wrapped, SPAWN_LOG_WRAPPER, ['true']);
    }
    if (readSpawnLog(env[SPAWN_LOG_VARIABLE]).length !== runs) throw new Error('the wrapper did not log every run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    wallMs: (totals.wrapped.wall - totals.direct.wall) / runs,
    cpuMs: (totals.wrapped.cpu - totals.direct.cpu) / runs,
    runs,
  };
}
