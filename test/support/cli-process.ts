import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { ROOT } from './test-env';

export const CLI = resolve(ROOT, 'dist/src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<CliResult>;
}

/**
 * Starts `node dist/src/cli/main.js <args>` as a user would run `atelier`, with `env` on top of a clean
 * environment (no ATELIER_URL/ATELIER_TOKEN of the caller's), and `input` on stdin (closed at once).
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv, input = ''): RunningCli {
  const base = { ...process.env };
  delete base.ATELIER_URL;
  delete base.ATELIER_TOKEN;
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.end(input);
  const done = new Promise<CliResult>((r) => child.once('close', (code) => r({ code, stdout, stderr })));
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs the CLI to its end; kills it and fails after `timeoutMs`. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
  timeoutMs = 60_000,
): Promise<CliResult> {
  const running = startCli(args, env, input);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  try {
    const result = await running.done;
    if (result.code === null) {
      throw new Error(`atelier ${args.join(' ')} ran past ${timeoutMs} ms\n${result.stdout}\n${result.stderr}`);
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** A failure message with everything the CLI printed. */
export const shown = (r: CliResult): string =>
  `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
