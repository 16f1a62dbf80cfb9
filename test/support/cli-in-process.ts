import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { ApiTiming } from '../../src/cli/api-client';
import type { CliIo } from '../../src/cli/context';
import { runCli } from '../../src/cli/program';

/** What the CLI wrote, and its exit code. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export interface InProcessOptions {
  /** stdout is a terminal (an agent's output made printable, and ended with a line feed). */
  ttyStdout?: boolean;
  /** stderr is a terminal (a live progress line), of this many columns when given. */
  ttyStderr?: boolean;
  stderrColumns?: number;
  /** How long to wait on the API: short by default, so that a test of a silent API ends soon. */
  timing?: ApiTiming;
  env?: NodeJS.ProcessEnv;
}

/**
 * Waits for tests of an API that answers: a busy machine may take longer than the short default to
 * answer the first request of a process.
 */
export const PATIENT: ApiTiming = { answerMs: 10_000, streamIdleMs: 10_000 };

/** Runs the CLI in this process against `url` (ATELIER_URL), its streams collected. */
export async function atelierInProcess(args: string[], url: string, options: InProcessOptions = {}): Promise<Ran> {
  const stdout = Object.assign(new PassThrough(), { isTTY: options.ttyStdout === true });
  const stderr = Object.assign(new PassThrough(), {
    isTTY: options.ttyStderr === true,
    columns: options.stderrColumns,
  });
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const io: CliIo = {
    stdout,
    stderr,
    stdin: Object.assign(new PassThrough(), { isTTY: true }),
    env: { ATELIER_URL: url, ...options.env },
    timing: options.timing ?? { answerMs: 300, streamIdleMs: 300 },
  };
  const code = await runCli(['node', 'atelier', ...args], io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** A stand-in for the API on a free port of 127.0.0.1. */
export interface StubApi {
  url: string;
  close: () => void;
}

/** Starts a stand-in for the API that answers each request with `handle`. */
export async function stubApi(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<StubApi> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

export const sendJson = (res: ServerResponse, status: number, doc: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(doc));
};

/** A task as `GET /v1/tasks/:id` shows it to the CLI, just submitted, with `extra` on top. */
export const taskDocument = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  status: 'queued',
  agent: 'echo',
  model: null,
  priority: 3,
  labels: {},
  createdAt: new Date().toISOString(),
  startedAt: null,
  finishedAt: null,
  error: null,
  links: { self: `/v1/tasks/${id}`, logs: `/v1/tasks/${id}/logs`, temporalUi: 'http://ui/x' },
  attempts: [],
  ...extra,
});
