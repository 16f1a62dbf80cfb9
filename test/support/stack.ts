import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../../src/net/free-port';
import { ROOT, TEST_AGENTS_FILE, testEnv, uniqueQueue } from './test-env';
import { waitFor } from './wait-for';

export interface Stack {
  baseUrl: string;
  process: ChildProcess;
  /** Output of the `up` process and its children, for assertions and failure messages. */
  output: () => string;
  stop: () => Promise<number | null>;
  /** The pid of the supervised service whose entry script ends in `script`.js (api/main, workers/agent-worker…). */
  servicePid: (script: string) => number | undefined;
}

/**
 * Starts the whole service exactly as `npm run up` does (dist/src/up/main.js: API, workflow worker,
 * agent worker, supervised), against the test run's Temporal server and database, on its own port
 * and task queues, and waits until /health/ready says ready.
 */
export async function startStack(env: NodeJS.ProcessEnv = {}): Promise<Stack> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [resolve(ROOT, 'dist/src/up/main.js')], {
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
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'the stack to be ready',
      async () => child.exitCode === null && (await fetch(`${baseUrl}/health/ready`)).ok,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- stack output ---\n${output}`);
  }
  return {
    baseUrl,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
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
