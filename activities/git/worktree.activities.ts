import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { EndedTaskStore } from '../../src/store/ended-task-store';
import type { WorktreeStore } from '../../src/store/worktree-store';
import { FAILURE_CLASSES, WORKTREE_GONE, type TaskCommit } from '../../workflows/definitions';
import { lockViolations } from '../../workflows/lock-globs';
import { namedFiles } from '../../workflows/named-files';
import { GitError, GitOutputTooLarge, KeyedMutex, gitVia, type Git } from './git';
import { EVERY_SUBMODULE, commitTaskWork, leftUncommitted } from './commit-work';
import { historySizedCommit } from './history-sized-commit';
import { clearingLeftLocks } from './left-locks';
import { removeLongEndedOrphan, setAside } from './orphan-copies';
import { removeTree } from './remove-tree';

/** The branch a task's work is committed on; it outlives the worktree. */
export const branchForTask = (taskId: string): string => `atelier/${taskId}`;

/**
 * Where the commit a task's branch started from is kept: every run and every worker diffs against the
 * same base, even after `ref` moved or when the base is a merge of several dependencies.
 */
export const baseRefForTask = (taskId: string): string => `refs/atelier/base/${taskId}`;

export interface PrepareWorktreeInput {
  taskId: string;
  /** The user's repository; never checked out or changed, only its worktree list and branches are. */
  repoPath: string;
  /** Where the branch starts when it does not exist yet; default HEAD. */
  ref?: string;
  /** Commits merged into `ref` to make the base (a plan task building on several dependencies). */
  merge?: string[];
}

export interface PreparedWorktree {
  /** The agent worker's own task queue: commit and removal must run where the worktree is. */
  workerQueue: string;
  worktreePath: string;
  branch: string;
  /** The commit the task's work started from (the ref's), to diff against. */
  baseSha: string;
  /** The branch's head when the worktree was made: later than baseSha when earlier work was salvaged. */
  headSha: string;
  /**
   * The worktrees (by path) whose uncommitted work this preparation carried over: the one found here as
   * it was left, or those of lost workers it took over, their work committed on the branch.
   */
  keptWorkOf?: string[];
}

export interface CommitWorktreeInput {
  taskId: string;
  agent: string;
  worktreePath: string;
  baseSha: string;
  /** The task's declared lock globs: changed files outside them are `lockViolations`. */
  locks?: string[];
  /** Why this commit is made before the task ends (the work of a failed attempt), for its message. */
  note?: string;
}

export interface WorktreeCommit extends TaskCommit {
  /** Whether this call made a commit (false: nothing a commit can hold was left uncommitted). */
  committed: boolean;
}

export interface WorktreeDeps {
  /** Directory under which this worker makes worktrees, one per task. */
  worktreeRoot: string;
  /** This agent worker's own task queue. */
  workerQueue: string;
  /** Where commits and patches are recorded; unset in unit tests. */
  store?: Pick<WorktreeStore, 'recordCommit' | 'recorded'>;
  /** How git runs: the agent worker starts it through its spawner helper, as it starts agents; default directly. */
  git?: Git;
  /** Which tasks ended, asked again just before the janitor's sweep removes a worktree; unset: the sweep refuses. */
  endedTasks?: Pick<EndedTaskStore, 'ended'>;
  /** The machine whose disk holds this worker's worktrees; default its host name. */
  host?: string;
  /**
   * Whether no agent worker of `host` is alive (none heartbeat lately): its disk, and the worktrees on
   * it, are gone with it as far as Atelier can tell. Unset: every other machine counts as alive.
   */
  agentHostGone?: (host: string) => Promise<boolean>;
  /** How long one git command may run outside an activity (the janitor's sweep); default 5 minutes. */
  sweepGitTimeoutMs?: number;
  /** How it removes a worktree's directory, and a long-ended task's orphaned one; default `removeTree`. */
  removeTree?: (path: string) => Promise<void>;
}

/** Beside git's own files of a worktree (in the repository): the host whose disk holds its directory. */
const HOST_MARKER = 'atelier-host';

/** How long each of the janitor's database queries may wait for PostgreSQL (it holds a repository's lock). */
const SWEEP_DB_TIMEOUT_MS = 30_000;

/** A task's refs in its repository: the base commit kept beside its branch, and whether the branch exists. */
interface TaskRefs {
  keptBase?: string;
  branchExists: boolean;
}

/** The cancellation signal of the activity under way; none for the janitor's sweeps, which run outside one. */
function runningActivitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** How long one git command may run outside an activity, unless told otherwise. */
const GIT_TIMEOUT_OUTSIDE_ACTIVITY_MS = 5 * 60_000;

/**
 * `run`, each command stopped (its process group killed) with the activity that runs it: cancelled,
 * timed out, or its worker shutting down; outside an activity (the janitor's sweeps), after `timeoutMs`.
 * A git that hangs cannot hold a worktree or a repository for good.
 */
const stoppedWithActivity =
  (run: Git, timeoutMs = GIT_TIMEOUT_OUTSIDE_ACTIVITY_MS): Git =>
  (cwd, args) =>
    run(cwd, args, runningActivitySignal() ?? AbortSignal.timeout(timeoutMs));

/** The real path of `path`, or `path` itself when it is not there (a registration whose directory is gone). */
const realpathOr = (path: string): string => {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
};

/** What a sweep of a repository's ended worktrees did. */
export interface SweepResult {
  /** The task ids whose worktree it removed. */
  removed: string[];
  /**
   * Worktrees whose work could not be committed, or that could not be removed (files the worker may not
   * delete), and directories git no longer knows that could not be removed: they stay where they are.
   */
  kept: { taskId: string; worktree: string; error: string }[];
}

/**
 * The worktree root as git reports the paths under it: made when missing, then its real path (a root
 * given through a symlink, as macOS's tmpdir is, or with a trailing slash). Worktrees are found by
 * comparing git's paths with the paths under it.
 */
const realWorktreeRoot = (root: string): string => {
  mkdirSync(root, { recursive: true });
  return realpathSync(resolve(root));
};

const invalidRepo = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, FAILURE_CLASSES.invalidInput);

/** The real path of a task's repository directory; a path that is not there, or no directory, is refused for good. */
function repoDirectory(repoPath: string): string {
  let real: string;
  try {
    real = realpathSync(repoPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidRepo(`${repoPath} does not exist`);
    throw err;
  }
  if (!statSync(real).isDirectory()) throw invalidRepo(`${repoPath} is not a git repository`);
  return real;
}

/**
 * What the first git command's failure in a task's repository means. Only git's own "not a git
 * repository" is the task's fault, for good; anything else (git missing, a repository git distrusts,
 * the spawner helper failing) may pass, so it is retried, with git's words; a cancel stays a cancel.
 */
function unreadableRepo(repoPath: string, err: unknown): unknown {
  if (!(err instanceof GitError)) return err;
  if (err.exitCode === 128 && /not a git repository/i.test(err.stderr)) {
    return invalidRepo(`${repoPath} is not a git repository`);
  }
  return new Error(`could not read the git repository ${repoPath}: ${err.message}`, { cause: err });
}

/**
 * A failure to resolve a ref given with the task (`headOf`): one that names no commit there is the
 * task's fault, for good (`message`); any other (a cancel, a killed git, the spawner helper failing)
 * stays as it is, and is retried.
 */
const unresolvedRef =
  (message: string) =>
  (err: unknown): never => {
    if (err instanceof GitError && err.exitCode === 128 && /needed a single revision/i.test(err.stderr)) {
      throw invalidRepo(message);
    }
    throw err;
  };

/**
 * `git worktree list --porcelain`: each worktree's path, checked-out branch, and whether it is locked
 * (git locks a worktree while `worktree add` makes it: one still locked was cut short).
 */
interface WorktreeEntry {
  path: string;
  branch?: string;
  locked: boolean;
}

const parseWorktreeList = (porcelain: string): WorktreeEntry[] =>
  porcelain
    .split('\n\n')
    .map((block) => {
      const lines = block.split('\n');
      const path = lines.find((l) => l.startsWith('worktree '))?.slice('worktree '.length);
      const branch = lines.find((l) => l.startsWith('branch refs/heads/'))?.slice('branch refs/heads/'.length);
      return { path: path ?? '', branch, locked: lines.some((l) => l === 'locked' || l.startsWith('locked ')) };
    })
    .filter((w) => w.path !== '');

/**
 * The worktrees, by path, where a commit or removal of this process runs: the agent activity's commit,
 * and the workflow's commit and removal (which may come late, after the task's end was recorded). One
 * per process, shared by every set of activities: the janitor leaves a worktree in use alone, and they
 * wait for the janitor's commit and removal, so two gits never write one worktree's index.
 */
const worktreesInUse = new KeyedMutex();

const commitSubject = (taskId: string, agent: string, note?: string): string =>
  `atelier: task ${taskId} (agent ${agent})${note ? `: ${note}` : ''}`;

/**
 * Commits what a successful agent left in its task's worktree, from the agent activity itself, before
 * the success is recorded: the work is on the branch whatever happens to this worker next. Its git
 * commands stop with the agent activity (`stoppedWithActivity`; outside one after `timeoutMs`), so a
 * git that hangs fails the commit and frees the worktree.
 */
export const taskWorkSaver = (run: Git = gitVia(), timeoutMs?: number) => {
  const git = stoppedWithActivity(run, timeoutMs);
  return (worktreePath: string, taskId: string, agent: string): Promise<boolean> =>
    worktreesInUse.run(worktreePath, () =>
      commitTaskWork(git, {
        cwd: worktreePath,
        taskId,
        branch: branchForTask(taskId),
        subject: commitSubject(taskId, agent),
        agent,
      }),
    );
};

/**
 * A diffstat that says first what the commit could not hold and stays only in the worktree (lost with
 * it): the task's view shows the diffstat, and nothing is dropped silently.
 */
const withUncommitted = (diffstat: string, uncommitted: string[]): string =>
  uncommitted.length === 0
    ? diffstat
    : [` not committed (a repository of its own, or a submodule's own changes): ${uncommitted.join(', ')}`, diffstat]
        .filter(Boolean)
        .join('\n');

/**
 * Activities of the agent workers for git worktrees: a task's agent runs in a worktree of its own on
 * branch `atelier/<task id>`, never in the user's checkout. Every one is idempotent (safe to retry):
 * prepare reuses the task's worktree or branch, commit commits only what is uncommitted, remove
 * tolerates a worktree already gone.
 */
export function createWorktreeActivities(deps: WorktreeDeps) {
  const reposInUse = new KeyedMutex();
  const root = realWorktreeRoot(deps.worktreeRoot);
  const host = deps.host ?? hostname();
  // A command stops with the activity that runs it: timed out, or its worker shutting down (these
  // activities do not heartbeat, so a cancel arrives only so); the janitor's, which no activity runs,
  // after a timeout of its own. A git that hangs cannot hold the repository's lock for good.
  const git = stoppedWithActivity(deps.git ?? gitVia(), deps.sweepGitTimeoutMs);
  const removeDir = deps.removeTree ?? removeTree;

  const headOf = async (cwd: string, ref = 'HEAD'): Promise<string> =>
    (await git(cwd, ['rev-parse', '--verify', '--end-of-options', `${ref}^{commit}`])).stdout.trim();

  const succeeds = (cwd: string, args: string[]): Promise<boolean> =>
    git(cwd, args).then(
      () => true,
      () => false,
    );

  /**
   * `ours` with `theirs` merged in, as a commit made without any checkout (`merge-tree`): fast-forwards
   * when one contains the other; a conflict fails the task for good, naming the files.
   */
  const merged = async (repo: string, taskId: string, ours: string, theirsRef: string): Promise<string> => {
    const theirs = await headOf(repo, theirsRef).catch(
      unresolvedRef(`commit ${theirsRef} to merge not found in ${repo}`),
    );
    if (await succeeds(repo, ['merge-base', '--is-ancestor', theirs, ours])) return ours;
    if (await succeeds(repo, ['merge-base', '--is-ancestor', ours, theirs])) return theirs;
    let tree: string;
    try {
      tree = (await git(repo, ['merge-tree', '--write-tree', '--no-messages', ours, theirs])).stdout.trim();
    } catch (err) {
      if (err instanceof GitError && err.exitCode === 1) {
        const files = [
          ...new Set(
            err.stdout
              .split('\n')
              .slice(1)
              .map((l) => l.split('\t')[1] ?? '')
              .filter(Boolean),
          ),
        ];
        throw ApplicationFailure.nonRetryable(
          `the dependencies' work conflicts: merging ${theirs.slice(0, 12)} into ${ours.slice(0, 12)} conflicts in ${namedFiles(files)}`,
          FAILURE_CLASSES.mergeConflict,
        );
      }
      throw err;
    }
    const message = `atelier: merge ${theirs.slice(0, 12)} for task ${taskId}`;
    return (await git(repo, ['commit-tree', tree, '-p', ours, '-p', theirs, '-m', message])).stdout.trim();
  };

  /** The task's refs in `repo`, in one command; fails where `repo` is not a git repository. */
  const taskRefsIn = async (repo: string, taskId: string): Promise<TaskRefs> => {
    const kept = baseRefForTask(taskId);
    const branch = `refs/heads/${branchForTask(taskId)}`;
    const listed = (await git(repo, ['for-each-ref', '--format=%(refname) %(objectname)', kept, branch])).stdout;
    const refs = new Map(listed.split('\n').map((line) => line.split(' ') as [string, string | undefined]));
    return { keptBase: refs.get(kept), branchExists: refs.has(branch) };
  };

  /**
   * A new task's base commit: `ref` with `merge` merged in, kept beside its branch. Kept once: when
   * another preparation of the task kept one meanwhile, that one stays and is the base. The base ref's
   * lock, which only the task's preparation takes, is cleared when a killed git left it (a preparation
   * cancelled or timed out while it kept the base): else no preparation of the task could keep one.
   */
  const newBase = async (repo: string, input: PrepareWorktreeInput): Promise<string> => {
    const ref = input.ref ?? 'HEAD';
    const baseRef = baseRefForTask(input.taskId);
    const lock = resolve(repo, (await git(repo, ['rev-parse', '--git-path', `${baseRef}.lock`])).stdout.trim());
    return clearingLeftLocks([lock], async () => {
      let base = await headOf(repo, ref).catch(unresolvedRef(`ref ${ref} not found in ${repo}`));
      for (const other of input.merge ?? []) base = await merged(repo, input.taskId, base, other);
      // The empty old value: only if the ref does not exist yet.
      return git(repo, ['update-ref', baseRef, base, '']).then(
        () => base,
        async (err: unknown) => {
          const kept = (await taskRefsIn(repo, input.taskId)).keptBase;
          if (kept === undefined) throw err;
          return kept;
        },
      );
    });
  };

  /**
   * Removes one worktree of Atelier's, its registration and its directory. Git removes a registration
   * whose directory is gone as well, so nothing is ever left for a `git worktree prune`, which would
   * also drop the live worktrees of workers whose disks this one does not see. A removal may fail while
   * a worker on another machine changes the repository's worktrees (git then reads its half-written
   * files): once the directory is gone the registration is removed again, and if it still stays, this
   * throws (the activity retries), rather than leave the branch checked out in a directory that is gone.
   * A directory that cannot be removed (`removeTree`: files the worker may not delete) throws too.
   */
  const unregister = async (repo: string, path: string): Promise<void> => {
    const removed = await succeeds(repo, ['worktree', 'remove', '--force', '--force', path]);
    await removeDir(path);
    if (removed) return;
    const listed = parseWorktreeList((await git(repo, ['worktree', 'list', '--porcelain'])).stdout);
    if (listed.some((w) => w.path === path)) await git(repo, ['worktree', 'remove', '--force', '--force', path]);
  };

  /** The worktree's administrative directory in its repository, as its `.git` file names it. */
  const adminDirOf = async (worktreePath: string): Promise<string | undefined> => {
    const pointer = await readFile(join(worktreePath, '.git'), 'utf8').catch(() => undefined);
    const dir = /^gitdir: (.+)$/m.exec(pointer ?? '')?.[1];
    return dir === undefined ? undefined : resolve(worktreePath, dir.trim());
  };

  /** Marks the worktree just made as this machine's (HOST_MARKER). */
  const markMadeHere = async (worktreePath: string): Promise<void> => {
    const admin = await adminDirOf(worktreePath);
    if (admin !== undefined) await writeFile(join(admin, HOST_MARKER), host);
  };

  /**
   * Whether the registered worktree at `worktreePath` was made on this machine. Every worker has the
   * same path for a task's worktree (under the same root), while their disks differ where only the
   * repository is shared: a directory found here may be this machine's old copy of a worktree that
   * another worker made again since, under the same registration. Its files then are not what that
   * registration's index and HEAD say, and committing them would undo the other worker's work. One made
   * before markers were written counts as made here.
   */
  const madeHere = async (worktreePath: string): Promise<boolean> => {
    const admin = await adminDirOf(worktreePath);
    if (admin === undefined) return false;
    const marker = await readFile(join(admin, HOST_MARKER), 'utf8').catch(() => undefined);
    return marker === undefined || marker === host;
  };

  /**
   * Whether the worktree registered at `path` was made by Atelier, on any machine: it carries the host
   * marker. Read from the repository's own administrative directories, since the worktree's directory
   * may be on another machine's disk.
   */
  const markedByAtelier = async (repo: string, path: string): Promise<boolean> =>
    (await markedHost(repo, path)) !== undefined;

  /** The host the worktree registered at `path` was made on (its HOST_MARKER); undefined without one. */
  const markedHost = async (repo: string, path: string): Promise<string | undefined> => {
    const common = resolve(repo, (await git(repo, ['rev-parse', '--git-common-dir'])).stdout.trim());
    const admins = join(common, 'worktrees');
    for (const name of await readdir(admins).catch(() => [])) {
      const gitdir = await readFile(join(admins, name, 'gitdir'), 'utf8').catch(() => '');
      if (dirname(gitdir.trim()) === path)
        return readFile(join(admins, name, HOST_MARKER), 'utf8').catch(() => undefined);
    }
    return undefined;
  };

  /**
   * Before a registered worktree that nothing saved is unregistered (which deletes its directory): its
   * directory, when there is one and git did not leave it half-made (locked while `worktree add` makes
   * it: nothing in it to keep), may hold work nothing else has (its `.git` removed by the agent, so no
   * commit could take it; this machine's old copy of a worktree another worker made again since). It is
   * set aside, kept as long as the janitor keeps such copies.
   */
  const setAsideUnsaved = async (taskId: string, entry: WorktreeEntry): Promise<void> => {
    if (entry.locked || !existsSync(entry.path)) return;
    const aside = await setAside(entry.path);
    log.warn('set aside a worktree whose work could not be saved', { taskId, worktree: entry.path, aside });
  };

  /**
   * Commits what was left uncommitted in a worktree about to be removed (nothing works in a worktree
   * whose task moved on). Throws when the work could not be saved: the worktree must then stay.
   */
  const saveLeftWork = (path: string, subject: string, taskId: string): Promise<boolean> =>
    commitTaskWork(git, { cwd: path, taskId, branch: branchForTask(taskId), subject });

  /**
   * The task's branch checked out in another of Atelier's worktrees is one a lost worker left (a task
   * runs in one place at a time, and the workflow moves it only once that place is gone): what was left
   * uncommitted there is committed, so no work is lost when the disk is shared, and the worktree is
   * removed so the branch can be checked out here. Work that cannot be committed stays where it is,
   * and the task fails naming it.
   */
  const takeOver = async (repo: string, taskId: string, stale: WorktreeEntry[]): Promise<string[]> => {
    const kept: string[] = [];
    for (const lost of stale) {
      // A worktree still locked was cut short while git made it: half checked out, nothing to save. One
      // another machine made has its files there, not here: what is here is an old copy, never saved.
      if (existsSync(lost.path) && !lost.locked && (await madeHere(lost.path))) {
        const subject = `atelier: task ${taskId}: salvaged from a lost worker's worktree`;
        const saved = await saveLeftWork(lost.path, subject, taskId).catch((err: unknown) => {
          throw ApplicationFailure.nonRetryable(
            `could not commit the work a lost worker left in ${lost.path} (${(err as Error).message}); it stays there: commit it on ${branchForTask(taskId)} by hand and remove that worktree, then retry the task`,
            FAILURE_CLASSES.crash,
          );
        });
        log.info('took over the worktree of a lost worker', { taskId, worktree: lost.path, salvaged: saved });
        kept.push(lost.path);
      } else await setAsideUnsaved(taskId, lost);
      await unregister(repo, lost.path);
    }
    return kept;
  };

  /**
   * What the task's branch holds from `baseSha` to `sha` (the worktree's HEAD), `uncommitted` named in
   * its diffstat, recorded with its patch on the store. Logs nothing (the janitor calls it outside any
   * activity): says instead whether the patch was too large to keep.
   */
  const recordedWork = async (
    cwd: string,
    taskId: string,
    baseSha: string,
    sha: string,
    locks: string[] | undefined,
    uncommitted: string[],
    dbTimeoutMs?: number,
  ): Promise<{ commit: TaskCommit; patchKept: boolean }> => {
    const range = `${baseSha}..${sha}`;
    // Every path the range touches, as it is (a rename's old path too, names unquoted): what locks judge.
    // A submodule's new commit among them whatever hides it (its `ignore` in .gitmodules, the user's
    // diff.ignoreSubmodules), and in the patch as the `Subproject commit` lines git apply takes (not the
    // user's diff.submodule=log summary, which git apply drops).
    const changedFiles = (
      await git(cwd, ['diff', ...EVERY_SUBMODULE, '--name-only', '--no-renames', '-z', range])
    ).stdout
      .split('\0')
      .filter((l) => l !== '');
    const diffstat = withUncommitted(
      (await git(cwd, ['diff', ...EVERY_SUBMODULE, '--stat', range])).stdout.trimEnd(),
      uncommitted,
    );
    const commit: TaskCommit = {
      branch: branchForTask(taskId),
      baseSha,
      sha,
      changedFiles,
      diffstat,
      lockViolations: locks && locks.length > 0 ? lockViolations(changedFiles, locks) : [],
    };
    if (!deps.store) return { commit, patchKept: true };
    // The patch goes to PostgreSQL, never into the workflow's history; one too large to keep is not
    // kept (the work is on the branch all the same), rather than failing a task whose work is done.
    const patch = await git(cwd, [
      'diff',
      ...EVERY_SUBMODULE,
      '--binary',
      '--no-ext-diff',
      '--no-textconv',
      range,
    ]).then(
      (r) => r.stdoutBytes,
      (err: unknown) => {
        if (!(err instanceof GitOutputTooLarge)) throw err;
        return null;
      },
    );
    await deps.store.recordCommit(taskId, commit, patch, dbTimeoutMs);
    return { commit, patchKept: patch !== null };
  };

  /**
   * Records the work on an ended task's branch when it holds more than the task's recorded commit: what
   * the janitor just salvaged, or a commit the agent activity made before its worker was lost and the
   * workflow's own commit never came. GET /v1/tasks/:id and its diff then show what the branch holds.
   * Against the task's kept base (or, for a branch older than kept bases, the recorded one); a branch
   * still at its base with nothing recorded has nothing to show.
   */
  const recordSalvaged = async (repo: string, cwd: string, taskId: string): Promise<void> => {
    // Under the repository's lock: a database gone silent must not hold it, as a hung git may not.
    const recorded = deps.store && (await deps.store.recorded(taskId, SWEEP_DB_TIMEOUT_MS));
    if (recorded === undefined) return;
    const head = await headOf(cwd);
    const base = (await taskRefsIn(repo, taskId)).keptBase ?? recorded.baseSha;
    if (base === null || head === recorded.commitSha || (recorded.commitSha === null && head === base)) return;
    await recordedWork(
      cwd,
      taskId,
      base,
      head,
      recorded.locks ?? undefined,
      await leftUncommitted(git, cwd),
      SWEEP_DB_TIMEOUT_MS,
    );
  };

  /** `commitWorktree`'s work, once the worktree is its own. */
  const commitIn = async (input: CommitWorktreeInput): Promise<WorktreeCommit> => {
    const cwd = input.worktreePath;
    const committed = await commitTaskWork(git, {
      cwd,
      taskId: input.taskId,
      branch: branchForTask(input.taskId),
      subject: commitSubject(input.taskId, input.agent, input.note),
      agent: input.agent,
    });
    const uncommitted = await leftUncommitted(git, cwd);
    if (uncommitted.length > 0) {
      log.warn('work no commit can hold stays in the worktree', { taskId: input.taskId, paths: uncommitted });
    }
    const head = await headOf(cwd);
    const { commit, patchKept } = await recordedWork(cwd, input.taskId, input.baseSha, head, input.locks, uncommitted);
    if (!patchKept) log.warn('the patch is too large to keep; the work is on its branch', { taskId: input.taskId });
    return { ...historySizedCommit(commit), committed };
  };

  return {
    /**
     * Makes (or finds) the task's worktree on this worker. A branch left by an earlier attempt, worker
     * or run is checked out as it is, so committed work is continued, not redone (salvage); a worktree
     * of it that a lost worker left is taken over first. Else the branch is created from the task's
     * base: `ref`, with `merge` merged in. Returns this worker's own queue for the steps that follow.
     */
    async prepareWorktree(input: PrepareWorktreeInput): Promise<PreparedWorktree> {
      // The worktree is the directory named after the task in the root: never a path out of it (the
      // workflow takes only UUIDs; this guards a call made otherwise).
      if (!/^[^/\\]+$/.test(input.taskId) || input.taskId === '.' || input.taskId === '..') {
        throw ApplicationFailure.nonRetryable(
          `task id ${JSON.stringify(input.taskId)} cannot name a directory of its own`,
          FAILURE_CLASSES.invalidInput,
        );
      }
      const repo = repoDirectory(input.repoPath);
      const task = await taskRefsIn(repo, input.taskId).catch((err: unknown) => {
        throw unreadableRepo(input.repoPath, err);
      });
      const branch = branchForTask(input.taskId);
      // Under the real root: git lists worktrees by their real paths.
      const worktreePath = join(root, input.taskId);
      // Outside the repository's lock: these touch only the task's own refs.
      const baseSha = task.keptBase ?? (await newBase(repo, input));
      /** The worktree made or found, at the branch's head, with the paths whose work it carried over. */
      const prepared = async (keptWorkOf: string[]): Promise<PreparedWorktree> => ({
        workerQueue: deps.workerQueue,
        worktreePath,
        branch,
        baseSha,
        headSha: await headOf(worktreePath),
        ...(keptWorkOf.length > 0 && { keptWorkOf }),
      });
      return reposInUse.run(repo, async () => {
        const listed = parseWorktreeList((await git(repo, ['worktree', 'list', '--porcelain'])).stdout);
        // A directory inside a repository is not one: the agent would run at the top of the worktree, and
        // its changes and locks would be judged against paths of the whole repository.
        if (!listed.some((w) => realpathOr(w.path) === repo)) {
          const top = (await git(repo, ['rev-parse', '--show-toplevel'])).stdout.trim();
          throw invalidRepo(`${input.repoPath} is inside the repository ${top}: give repo.path as ${top}`);
        }
        const entry = listed.find((w) => w.path === worktreePath);
        // Registered, not left half-made by a crash (git keeps it locked while it makes it), and made on
        // this machine.
        if (
          entry !== undefined &&
          !entry.locked &&
          existsSync(join(worktreePath, '.git')) &&
          (await madeHere(worktreePath))
        ) {
          return prepared([worktreePath]);
        }
        // A directory left half-made by a crash, a registration whose directory is gone, a worktree whose
        // .git the agent removed, or this machine's old copy of a worktree another worker made again
        // since: start clean. The last two, and a directory git does not know (a lost worker's, whose
        // worktree another worker took over from a disk it did not see), may hold work nothing else has:
        // they are set aside, kept as long as the janitor keeps such copies.
        if (entry !== undefined) {
          await setAsideUnsaved(input.taskId, entry);
          await unregister(repo, worktreePath);
        } else if (existsSync(worktreePath)) {
          const aside = await setAside(worktreePath);
          log.warn('set aside a copy of the worktree that git no longer knows', { taskId: input.taskId, aside });
        }
        const elsewhere = listed.filter((w) => w.branch === branch && w.path !== worktreePath);
        // Atelier's are named after the task, never the repository's own checkout, and in this worker's
        // root or marked: a user's own worktree named after the task (to review its work) is the user's.
        let foreign: WorktreeEntry | undefined;
        for (const w of elsewhere) {
          const ours =
            w !== listed[0] &&
            basename(w.path) === input.taskId &&
            (dirname(w.path) === root || (await markedByAtelier(repo, w.path)));
          if (!ours) foreign ??= w;
        }
        if (foreign !== undefined) {
          throw invalidRepo(
            `branch ${branch} is checked out at ${foreign.path}: check out another branch there, then retry the task`,
          );
        }
        const kept = await takeOver(repo, input.taskId, elsewhere);
        await mkdir(root, { recursive: true });
        if (task.branchExists) {
          await git(repo, ['worktree', 'add', worktreePath, branch]);
          await markMadeHere(worktreePath);
          return prepared(kept);
        }
        await git(repo, ['worktree', 'add', '-b', branch, worktreePath, baseSha]).catch(async (err: unknown) => {
          // A branch `atelier` of the user's: git keeps branches as paths, and no `atelier/…` can be
          // made beside it, however often this is retried.
          if (await succeeds(repo, ['show-ref', '--verify', '--quiet', 'refs/heads/atelier'])) {
            throw invalidRepo(
              `${input.repoPath} has a branch named atelier, so git cannot make the task's branch ${branch} beside it: rename that branch (git branch -m atelier <new name>), then retry the task`,
            );
          }
          throw err;
        });
        await markMadeHere(worktreePath);
        return { workerQueue: deps.workerQueue, worktreePath, branch, baseSha, headSha: baseSha };
      });
    },

    /**
     * Commits everything the agent left in the worktree on the task's branch, naming the task and the
     * agent; what no commit can hold (a repository of the agent's own, a submodule's own changes) is
     * named in the diffstat.
     */
    commitWorktree(input: CommitWorktreeInput): Promise<WorktreeCommit> {
      // Held the whole time: the diffs and the patch read the worktree too.
      return worktreesInUse.run(input.worktreePath, () => {
        // Deleted from this worker's disk while the task ran: no retry brings it back, and the
        // workflow then removes its registration (`unregisterLostWorktree`).
        if (!existsSync(input.worktreePath)) {
          throw ApplicationFailure.nonRetryable(
            `the worktree ${input.worktreePath} is gone from its worker's disk: nothing left there to commit`,
            WORKTREE_GONE,
          );
        }
        return commitIn(input);
      });
    },

    /** Removes the task's worktree; its branch stays. Nothing to do when it is already gone. */
    async removeWorktree(input: { repoPath: string; worktreePath: string }): Promise<void> {
      const repo = realpathSync(input.repoPath);
      await reposInUse.run(repo, () =>
        worktreesInUse.run(input.worktreePath, () => unregister(repo, input.worktreePath)),
      );
    },

    /**
     * Removes the registration of task `taskId`'s worktree at `worktreePath` that its workflow lost: the
     * task ended while the worker holding it was gone (with its disk: a pod evicted, a container
     * removed), or its directory was deleted. Nothing else removes it then: that worker's janitor is
     * gone with it, and the others never see the directory. Left, it keeps the task's branch checked
     * out, so neither `git checkout` nor `git branch -D` of it works in the user's repository. Runs on
     * any agent worker (the shared queue), under the repository's lock, and removes the registration
     * only when it is Atelier's (named after the task, never the repository's checkout, in this
     * worker's root or marked), not usable on this machine (its directory is absent here, or what is
     * here is not that worktree: its `.git` gone, git left it half-made, or another machine made it),
     * and made on this machine or on one with no agent worker alive (`agentHostGone`): a worktree made
     * on a machine still alive stays, for that machine's janitor.
     * Such a copy here is set aside first (`setAsideUnsaved`), kept as long as the janitor keeps such
     * copies. A worktree usable here is left to this machine's janitor, which commits what it holds
     * before removing it. The branch always stays, with the task's work. Never a `git worktree prune`,
     * which would drop the live registrations of workers whose disks this one does not see. Idempotent:
     * says whether it removed a registration; nothing to do when there is none at that path, or the
     * repository is gone.
     */
    async unregisterLostWorktree(input: { taskId: string; repoPath: string; worktreePath: string }): Promise<boolean> {
      if (!existsSync(input.repoPath)) return false;
      const repo = realpathSync(input.repoPath);
      const path = input.worktreePath;
      // Made on another machine: that machine's disk may still hold it (a worker restarted in its pod
      // keeps the pod's disk, and its janitor commits what the worktree holds), unless no agent worker
      // of that machine is alive. Asked before the locks are taken: the answer may take a while.
      const made = await markedHost(repo, path);
      if (made !== host && (made === undefined || !deps.agentHostGone || !(await deps.agentHostGone(made)))) {
        return false;
      }
      return reposInUse.run(repo, () =>
        worktreesInUse.run(path, async () => {
          const listed = parseWorktreeList((await git(repo, ['worktree', 'list', '--porcelain'])).stdout);
          const entry = listed.find((w) => w.path === path);
          if (entry === undefined) return false;
          const atelier =
            entry !== listed[0] &&
            basename(path) === input.taskId &&
            (dirname(path) === root || (await markedByAtelier(repo, path)));
          if (!atelier) return false;
          if (!entry.locked && existsSync(join(path, '.git')) && (await madeHere(path))) return false;
          await setAsideUnsaved(input.taskId, entry);
          await unregister(repo, path);
          log.warn('removed the registration of a worktree lost with its worker; its branch stays', {
            taskId: input.taskId,
            worktree: path,
          });
          return true;
        }),
      );
    },

    /**
     * The janitor: removes this worker's worktrees of `repoPath` whose task is in `ended`, and returns
     * the task ids it removed. Never any other: `git worktree list` shows the worktrees of every path the
     * repository is reached by, and of tasks started since the janitor looked. Each task is asked again,
     * under the repository's lock and just before its removal, whether it has still ended (a retried task
     * runs again; its preparation waits for the lock). What was left uncommitted in a worktree (a worker
     * killed mid-run) is committed first: its branch stays, with all the work, which is recorded as the
     * task's commit (`recordSalvaged`). A worktree whose work cannot be committed or recorded, or that
     * cannot be removed, is left where it is, and returned among `kept` with why. The directories under
     * the root of the tasks in `longEnded` that git no longer knows (another worker took the task's
     * worktree over from a disk it did not see) are removed too: nothing can commit them, and they were
     * kept ORPHANS_KEPT_DAYS for whoever wants what is in them; one that cannot be removed is among `kept`
     * too. It logs nothing itself: the janitor
     * calls it outside any activity, and logs what it returns.
     */
    async sweepWorktrees(input: { repoPath: string; ended: string[]; longEnded?: string[] }): Promise<SweepResult> {
      const endedTasks = deps.endedTasks;
      if (endedTasks === undefined) throw new Error('the worktree janitor cannot tell which tasks ended');
      const repo = realpathSync(input.repoPath);
      const ended = new Set(input.ended);
      const removed: string[] = [];
      const kept: SweepResult['kept'] = [];
      const listed = parseWorktreeList((await git(repo, ['worktree', 'list', '--porcelain'])).stdout);
      const ours = listed.filter((w) => dirname(w.path) === root && ended.has(basename(w.path)));
      /** Commits what an ended task's worktree holds and removes it; says whether it stays. */
      const sweepOne = async (entry: WorktreeEntry, taskId: string): Promise<boolean> => {
        // This machine's old copy of a worktree another worker made again: its files are not that
        // worktree's, and that worker's janitor removes it.
        if (existsSync(join(entry.path, '.git')) && !(await madeHere(entry.path))) return true;
        if (existsSync(entry.path) && !entry.locked) {
          const subject = `atelier: task ${taskId}: salvaged by the worktree janitor`;
          try {
            await saveLeftWork(entry.path, subject, taskId);
            await recordSalvaged(repo, entry.path, taskId);
          } catch (err) {
            kept.push({ taskId, worktree: entry.path, error: (err as Error).message });
            return true;
          }
        }
        // One that cannot be removed stays, said so, and the sweep goes on with the others.
        try {
          await unregister(repo, entry.path);
        } catch (err) {
          kept.push({ taskId, worktree: entry.path, error: (err as Error).message });
          return true;
        }
        return false;
      };
      for (const entry of ours) {
        const taskId = basename(entry.path);
        const stays = await reposInUse.run(repo, async () => {
          if ((await endedTasks.ended([taskId])).length === 0) return true;
          // A late commit or removal of its workflow's runs there: the worktree is theirs. Asked and
          // taken in one turn: one that comes meanwhile waits for this commit and removal.
          if (worktreesInUse.busy(entry.path)) return true;
          return worktreesInUse.run(entry.path, () => sweepOne(entry, taskId));
        });
        if (!stays) removed.push(taskId);
      }
      for (const taskId of input.longEnded ?? []) {
        const path = join(root, taskId);
        if (!existsSync(path) || listed.some((w) => w.path === path)) continue;
        // Asked again under the lock: a retried task prepares its worktree here again. One that cannot be
        // removed stays, said so, and the others are removed all the same.
        try {
          const orphaned = await reposInUse.run(repo, () => removeLongEndedOrphan(endedTasks, root, taskId, removeDir));
          if (orphaned) removed.push(taskId);
        } catch (err) {
          kept.push({ taskId, worktree: path, error: (err as Error).message });
        }
      }
      return { removed, kept };
    },
  };
}
