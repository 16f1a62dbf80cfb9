import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export const TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  name: string;
  /** The process's pid; absent for a row that sums several (`count` of them). */
  pid?: number;
  count?: number;
  cpuSeconds: number;
  peakRssMb: number;
}

/** CPU ticks (user and system) process `pid` has used, or undefined once it is gone. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat; fields[0] here is field 3.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** A memory field of /proc/<pid>/status (VmRSS: resident; RssAnon: its private part), in MB. */
export function memoryMb(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number | undefined {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The direct children of `pid` with a short name taken from their command line. */
export function childProcesses(pid: number): { pid: number; name: string }[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((line) => {
        const [p, ...args] = line.trim().split(/\s+/);
        const script = args.find((a) => a.endsWith('.js')) ?? args[0] ?? '?';
        // dist/src/api/main.js is the API; dist/src/workers/agent-worker.js the agent worker.
        const parts = script.replace(/\.js$/, '').split('/');
        const name = parts[parts.length - 1] === 'main' ? parts[parts.length - 2] : parts[parts.length - 1];
        return { pid: Number(p), name: name ?? script };
      });
  } catch {
    return [];
  }
}

/** Samples CPU time and resident memory of a fixed set of processes until stopped. */
export class UsageSampler {
  private readonly start = new Map<number, number>();
  private readonly lastTicks = new Map<number, number>();
  private readonly peak = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly processes: { pid: number; name: string }[]) {
    for (const p of processes) this.start.set(p.pid, cpuTicks(p.pid) ?? 0);
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
  }

  private sample(): void {
    for (const p of this.processes) {
      const ticks = cpuTicks(p.pid);
      if (ticks !== undefined) this.lastTicks.set(p.pid, ticks);
      const rss = memoryMb(p.pid);
      if (rss !== undefined) this.peak.set(p.pid, Math.max(this.peak.get(p.pid) ?? 0, rss));
    }
  }

  stop(): ProcessUsage[] {
    clearInterval(this.timer);
    this.sample();
    return this.processes.map((p) => ({
      name: p.name,
      pid: p.pid,
      // A process that has exited counts up to its last sample.
      cpuSeconds:
        ((cpuTicks(p.pid) ?? this.lastTicks.get(p.pid) ?? 0) - (this.start.get(p.pid) ?? 0)) / TICKS_PER_SECOND,
      peakRssMb: Math.round(this.peak.get(p.pid) ?? 0),
    }));
  }
}

/** The whole machine's CPU over a scenario: every process, PostgreSQL and the kernel included. */
export interface MachineUsage {
  cores: number;
  elapsedS: number;
  /** CPU seconds spent running anything (user, nice, system, interrupts). */
  busyCpuSeconds: number;
  /** CPU seconds the hypervisor gave to other guests while this one wanted to run. */
  stealCpuSeconds: number;
}

/** `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal, in ticks. */
function machineTicks(): { busy: number; steal: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: user + nice + system + irq + softirq, steal };
}

/** Measures the machine's CPU from now until `stop()`. */
export class MachineSampler {
  private readonly start = machineTicks();
  private readonly startedAt = performance.now();

  /** The usage since the start, per round of the `rounds` run meanwhile. */
  stop(rounds = 1): MachineUsage {
    const end = machineTicks();
    return {
      cores: cpus().length,
      elapsedS: (performance.now() - this.startedAt) / 1000 / rounds,
      busyCpuSeconds: (end.busy - this.start.busy) / TICKS_PER_SECOND / rounds,
      stealCpuSeconds: (end.steal - this.start.steal) / TICKS_PER_SECOND / rounds,
    };
  }
}
