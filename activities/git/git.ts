import { spawnDirectly, type AgentProcess, type SpawnAgent } from '../agent/agent-process';
import { resolveProgram } from '../agent/resolve-program';

/** The result of one git command that exited 0. */
export interface GitResult {
  stdout: string;
  /** `stdout` as git printed it, byte for byte (a patch of a file that is not UTF-8). */
  stdoutBytes: Buffer;
  stderr: string;
}

/** A git command that exited non-zero, with what git said. */
export class GitError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    /** What it printed before failing: some commands (merge-tree) report there. */
    readonly stdout = '',
  ) {
    // Some say why on stdout only (`commit` with nothing to commit).
    const said = stderr.trim() || stdout.trim();
    super(`git ${args.join(' ')} failed (${exitCode ?? 'signal'}): ${said.slice(0, 2000)}`);
  }
}

/** The most output one git command may print (a task's binary patch among them); past it, it is killed. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** A git command that printed more than a command may (`MAX_OUTPUT_BYTES`), and was killed for it. */
export class GitOutputTooLarge extends GitError {
  constructor(args: readonly string[]) {
    super(args, null, `printed more than ${MAX_OUTPUT_BYTES} bytes`);
  }
}

/**
 * Runs one git command (`args`, never through a shell) in `cwd`. When `signal` aborts, the command is
 * killed with its process group, and the call rejects with the signal's reason.
 */
export type Git = (cwd: string, args: readonly string[], signal?: AbortSignal) => Promise<GitResult>;

/**
 * git's environment, reduced so the user's hooks, editors and pagers never run, and commits get a fixed
 * identity when none is configured.
 */
const gitEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  GIT_TERMINAL_PROMPT: '0',
  GIT_PAGER: 'cat',
  GIT_EDITOR: 'true',
  GIT_AUTHOR_NAME: process.env.GIT_AUTHOR_NAME ?? 'Atelier',
  GIT_AUTHOR_EMAIL: process.env.GIT_AUTHOR_EMAIL ?? 'atelier@localhost',
  GIT_COMMITTER_NAME: process.env.GIT_COMMITTER_NAME ?? 'Atelier',
  GIT_COMMITTER_EMAIL: process.env.GIT_COMMITTER_EMAIL ?? 'atelier@localhost',
});

/**
 * Settings of the user's (HOME is passed through) that git must not follow here: hooks, signing, a
 * program `git status` starts (fsmonitor), colours, path prefixes other than `a/` and `b/` or context
 * other than 3 lines (`diff.context=0`), which would go into the stored diffstat and into a patch that
 * `git apply` then refuses, and the gc or maintenance a commit may start in the background in the
 * user's repository while other tasks work there.
 */
const FIXED_CONFIG = [
  'core.hooksPath=/dev/null',
  'commit.gpgSign=false',
  'core.fsmonitor=false',
  'color.ui=false',
  'color.diff=false',
  'diff.noprefix=false',
  'diff.mnemonicPrefix=false',
  'diff.srcPrefix=a/',
  'diff.dstPrefix=b/',
  'diff.context=3',
  'gc.auto=0',
  'maintenance.auto=false',
].flatMap((setting) => ['-c', setting]);

/**
 * Runs git the way the worker starts agents (`spawn`: through the agent worker's spawner helper, which
 * forks nothing of the worker, or directly), each command in a process group that dies with the worker.
 */
export function gitVia(spawn: SpawnAgent = spawnDirectly): Git {
  const env = gitEnv();
  let program: string | undefined;
  return (cwd, args, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      program ??= resolveProgram('git', env.PATH, process.cwd());
      if (program === undefined) return reject(new GitError(args, null, `git is not on the PATH (${env.PATH})`));
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      let overflow = false;
      const child: AgentProcess = spawn(
        { file: program, args: [...FIXED_CONFIG, ...args], env, cwd, leavesNothing: true },
        {
          output: (stream, chunk) => {
            bytes += chunk.length;
            if (bytes > MAX_OUTPUT_BYTES) {
              overflow = true;
              child.killGroup('SIGKILL');
            } else (stream === 'stdout' ? out : err).push(chunk);
          },
          exit: () => undefined,
          close: (end) => {
            signal?.removeEventListener('abort', stop);
            const stdoutBytes = Buffer.concat(out);
            const stdout = stdoutBytes.toString();
            const stderr = Buffer.concat(err).toString();
            if (signal?.aborted) reject(signal.reason);
            else if (overflow) reject(new GitOutputTooLarge(args));
            else if (end.kind === 'exited' && end.exitCode === 0) resolve({ stdout, stdoutBytes, stderr });
            else if (end.kind === 'exited') reject(new GitError(args, end.exitCode, stderr, stdout));
            else if (end.kind === 'signalled')
              reject(new GitError(args, null, `${stderr}killed by ${end.signal}`, stdout));
            else reject(new GitError(args, null, end.message, stdout));
          },
        },
      );
      const stop = (): void => child.killGroup('SIGKILL');
      signal?.addEventListener('abort', stop, { once: true });
    });
}

/**
 * Serialises work on one key (a repository, a worktree) within this process: `git worktree add/remove`
 * edit the repository's administrative files, and two gits writing one worktree's index collide. Across
 * processes git's own lock files refuse the second one, and the activity retries.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Whether work on `key` runs or waits: asked and acted on in one turn, nothing comes between. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
