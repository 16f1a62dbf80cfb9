import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../../src/net/free-port';
import { servingWithWorkers } from '../../src/up/serving-with-workers';
import { ROOT, TEST_AGENTS_FILE, testEnv, uniqueQueue } from './test-env';
import { waitFor } from './wait-for';

/** A started `up` process, ready or not. */
export interface UpProcess {
  baseUrl: string;
  process: ChildProcess;
  /** Output of the `up` process and its children, for assertions and failure messages. */
  output: () => string;
  /** Its exit code once it has exited (null: killed by a signal). */
  exited: Promise<number | null>;
}

export interface Stack extends UpProcess {
  stop: () => Promise<number | null>;
  /** The pid of the supervised service whose entry script ends in `script`.js (api/main, workers/agent-worker…). */
  servicePid: (script: string) => number | undefined;
}

export interface UpCommand {
  /** The command that runs `up`; by default `node dist/src/up/main.js`. */
  argv?: string[];
  /** In a process group (and session) of its own, as a terminal's job: a test can signal the whole group. */
  detached?: boolean;
  /** A pipe to its stdin, for keys typed into a terminal (under script(1)). */
  stdin?: boolean;
}

/**
 * Starts the whole service exactly as `npm run up` does (dist/src/up/main.js: API, workflow worker,
 * agent worker, supervised), against the test run's Temporal server and database, on its own port
 * and task queues, and returns at once.
 */
export async function spawnUp(env: NodeJS.ProcessEnv = {}, command: UpCommand = {}): Promise<UpProcess> {
  const port = await freePort();
  let output = '';
  const [file, ...args] = command.argv ?? [process.execPath, resolve(ROOT, 'dist/src/up/main.js')];
  const child = spawn(file as string, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS ?? testEnv.temporalAddress,
      DATABASE_URL: env.DATABASE_URL ?? testEnv.databaseUrl,
      ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
      ATELIER_WORKFLOW_QUEUE: uniqueQueue('wf'),
      ATELIER_AGENT_QUEUE: uniqueQueue('agents'),
      ATELIER_RETRY_BACKOFF_SECONDS: '0.2',
      ATELIER_SHUTDOWN_GRACE_SECONDS: '2',
      // Several stacks run at once: each worker takes a free metrics port and registers it (GET /v1/workers).
      ATELIER_WORKFLOW_WORKER_METRICS_PORT: '0',
      ATELIER_AGENT_WORKER_METRICS_PORT: '0',
      // Stacks share the test run's database: none may start the rows other tests leave unstarted on
      // purpose (test/e2e/stranded.e2e.test.ts lowers it, on a database of its own).
      ATELIER_STRANDED_AFTER_SECONDS: '86400',
      // Nor record the runs other tests terminate in Temporal before those tests' own cancels and retries
      // do (test/e2e/closed-runs.e2e.test.ts sweeps often, on a database of its own).
      ATELIER_CLOSED_RUN_SWEEP_SECONDS: '3600',
      ...env,
    },
    stdio: [command.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: command.detached ?? false,
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { baseUrl: `http://127.0.0.1:${port}`, process: child, output: () => output, exited };
}

/** spawnUp, then waits until /health/ready says ready and workers poll both task queues. */
export async function startStack(env: NodeJS.ProcessEnv = {}, command: UpCommand = {}): Promise<Stack> {
  const up = await spawnUp(env, command);
  const child = up.process;
  try {
    await Promise.race([
      waitFor('the stack to be ready', () => servingWithWorkers(up.baseUrl), { timeoutMs: 60_000, intervalMs: 250 }),
      // Up that exits will never be ready: say so at once.
      up.exited.then((code) => Promise.reject(new Error(`up exited (${code}) before the stack was ready`))),
    ]);
  } catch (err) {
    try {
      if (command.detached && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // its process group is gone already
    }
    throw new Error(`${(err as Error).message}\n--- stack output ---\n${up.output()}`);
  }
  return {
    ...up,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return up.exited;
    },
    servicePid: (script) => {
      let lines = '';
      try {
        lines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(child.pid)], { encoding: 'utf8' });
      } catch {
        return undefined; // ps exits 1 when there is no child
      }
      const line = lines.split('\n').find((l) => l.includes(`/${script}.js`));
      return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
    },
  };
}
