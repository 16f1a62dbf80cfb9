import { execFile } from 'node:child_process';

/** The result of one git command that exited 0. */
export interface GitResult {
  stdout: string;
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
    super(`git ${args.join(' ')} failed (${exitCode ?? 'signal'}): ${stderr.trim().slice(0, 2000)}`);
  }
}

/**
 * Runs git with an argv array (never a shell) in `cwd`. The environment is reduced so the user's
 * hooks, editors and pagers never run, and commits get a fixed identity when none is configured.
 */
export function git(cwd: string, args: readonly string[]): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      ['-c', 'core.hooksPath=/dev/null', '-c', 'commit.gpgSign=false', ...args],
      {
        cwd,
        maxBuffer: 64 * 1024 * 1024,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/tmp',
          GIT_TERMINAL_PROMPT: '0',
          GIT_PAGER: 'cat',
          GIT_EDITOR: 'true',
          GIT_AUTHOR_NAME: process.env.GIT_AUTHOR_NAME ?? 'Atelier',
          GIT_AUTHOR_EMAIL: process.env.GIT_AUTHOR_EMAIL ?? 'atelier@localhost',
          GIT_COMMITTER_NAME: process.env.GIT_COMMITTER_NAME ?? 'Atelier',
          GIT_COMMITTER_EMAIL: process.env.GIT_COMMITTER_EMAIL ?? 'atelier@localhost',
        },
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new GitError(args, code, stderr || err.message, stdout));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Serialises worktree operations on one repository within this process: `git worktree add/remove`
 * edit the repository's administrative files, and two at once can collide. Across processes git's own
 * lock files refuse the second one, and the activity retries.
 */
export class RepoMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(repo: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(repo) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.tails.set(repo, tail);
    void tail.then(() => {
      if (this.tails.get(repo) === tail) this.tails.delete(repo);
    });
    return next;
  }
}
