import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { EXIT, exitForStatus } from '../exit-codes';
import { agoText, between, errorText, table } from '../format';
import { DEFAULT_URL, type Cli } from '../context';
import { integer } from '../options';
import { printableInline } from '../printable';
import { shellQuote } from '../shell-quote';
import { TERMINAL_STATUSES, type SubmittedDoc, type TaskDoc } from '../task-types';
import { reportOutcome, WaitFailed, waitForTask } from '../wait';
import { type Action, UsageError } from './action';

/** `--label key=value`, split at the first `=`: a key may hold `:` (the API takes it), a value `=`. */
const collectLabel = (value: string, previous: Record<string, string>): Record<string, string> => {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('a label is key=value');
  const key = value.slice(0, at);
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`label ${key} is given twice`);
  return { ...previous, [key]: value.slice(at + 1) };
};

/**
 * `list --label key=value`: sent as the API's filter `label=key:value`, which it splits at the first `:`,
 * so a key that holds `:` would filter on another label; refused instead.
 */
const collectLabelFilter = (value: string, previous: Record<string, string>): Record<string, string> => {
  const labels = collectLabel(value, previous);
  if (Object.keys(labels).some((key) => key.includes(':'))) {
    throw new InvalidArgumentError("the API cannot filter on a label whose key holds ':'");
  }
  return labels;
};

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

interface WaitOptions {
  wait?: boolean;
  waitTimeout?: number;
}

interface SubmitOptions extends WaitOptions {
  file?: string;
  agent?: string;
  model?: string;
  workdir?: string;
  timeout?: number;
  maxAttempts?: number;
  priority?: number;
  label: Record<string, string>;
  idempotencyKey?: string;
  repo?: string;
  ref?: string;
  lock: string[];
  failOnLockViolations?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The prompt: the arguments, else `--file` (`-` is stdin), else stdin when it is not a terminal; never blank. */
async function promptOf(cli: Cli, words: string[], opts: SubmitOptions): Promise<string> {
  const prompt = await givenPrompt(cli, words, opts);
  if (prompt.trim() === '') throw new UsageError('the prompt is empty');
  return prompt;
}

async function givenPrompt(cli: Cli, words: string[], opts: SubmitOptions): Promise<string> {
  if (words.length > 0 && opts.file !== undefined)
    throw new UsageError('give the prompt as arguments or --file, not both');
  if (words.length > 0) return words.join(' ');
  if (opts.file !== undefined && opts.file !== '-') {
    try {
      return readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the prompt file ${opts.file}: ${(err as Error).message}`);
    }
  }
  if (opts.file === '-' || cli.io.stdin.isTTY !== true) {
    const text = await readAll(cli.io.stdin);
    if (text.trim() !== '') return text;
  }
  throw new UsageError('no prompt: give it as arguments, with --file <path>, or on stdin');
}

/** `--wait-timeout`, checked before anything is sent: without `--wait` it would be ignored. */
function checkWaitOptions(opts: WaitOptions): void {
  if (opts.waitTimeout !== undefined && !opts.wait) throw new UsageError('--wait-timeout needs --wait');
}

/**
 * Waits for the task and turns its outcome into the exit code. Ctrl-C, the end of `--wait-timeout` and
 * a failure to follow the task (WaitFailed: exit code 6, not 1, so that a script does not submit it
 * again) stop the waiting, not the task.
 */
async function waitAndReport(cli: Cli, id: string, opts: WaitOptions): Promise<number> {
  const interrupt = new AbortController();
  const onSigint = (): void => interrupt.abort();
  const deadline = opts.waitTimeout === undefined ? undefined : AbortSignal.timeout(opts.waitTimeout * 1000);
  process.once('SIGINT', onSigint);
  try {
    const task = await waitForTask(
      cli,
      id,
      deadline ? AbortSignal.any([interrupt.signal, deadline]) : interrupt.signal,
    );
    reportOutcome(cli, task);
    return exitForStatus(task.status);
  } catch (err) {
    if (interrupt.signal.aborted) {
      cli.note(`stopped waiting; task ${id} goes on (atelier status ${id})`);
      return EXIT.interrupted;
    }
    if (deadline?.aborted) {
      cli.note(
        `stopped waiting after ${opts.waitTimeout} s (--wait-timeout); task ${id} goes on (atelier status ${id})`,
      );
      return EXIT.waitTimedOut;
    }
    throw new WaitFailed(id, err);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const submit: Action = async (cli, words: string[], opts: SubmitOptions) => {
  checkWaitOptions(opts);
  const prompt = await promptOf(cli, words, opts);
  const body: Record<string, unknown> = { prompt };
  if (opts.agent !== undefined) body.agent = opts.agent;
  if (opts.model !== undefined) body.model = opts.model;
  if (opts.workdir !== undefined) body.workdir = resolve(opts.workdir);
  if (opts.timeout !== undefined) body.timeoutSeconds = opts.timeout;
  if (opts.maxAttempts !== undefined) body.maxAttempts = opts.maxAttempts;
  if (opts.priority !== undefined) body.priority = opts.priority;
  if (Object.keys(opts.label).length > 0) body.labels = opts.label;
  if (opts.idempotencyKey !== undefined) body.idempotencyKey = opts.idempotencyKey;
  if (opts.ref !== undefined && opts.repo === undefined) throw new UsageError('--ref needs --repo');
  if (opts.repo !== undefined) {
    body.repo = { path: resolve(opts.repo), ...(opts.ref !== undefined && { ref: opts.ref }) };
  }
  if (opts.lock.length > 0) body.locks = opts.lock;
  if (opts.failOnLockViolations) body.failOnLockViolations = true;
  const submitted = await cli.api.json<SubmittedDoc>('POST', '/v1/tasks', { body });
  if (!opts.wait) {
    if (cli.json) cli.printJson(submitted);
    else {
      cli.out(`${submitted.id}\n`);
      cli.note(`submitted task ${submitted.id} (${submitted.status}); follow it with: atelier logs -f ${submitted.id}`);
    }
    return EXIT.ok;
  }
  // With --json too: stdout has the task only once it ends, and a wait that fails must leave its id somewhere.
  cli.note(`submitted task ${submitted.id}; history: ${submitted.links.temporalUi}`);
  return waitAndReport(cli, submitted.id, opts);
};

/** The last line of a diffstat, its summary (` 1 file changed, 1 insertion(+)`), or none when nothing changed. */
const diffstatSummary = (diffstat: string | null): string => {
  const summary = (diffstat ?? '').split('\n').pop()?.trim() ?? '';
  return /^\d+ files? changed/.test(summary) ? summary : 'no changes';
};

/**
 * The lines of a task in a git repository: the repository, and once the task's branch has a recorded
 * commit, the branch, its sha (short) with the diffstat's summary, and what the commit could not hold
 * (the diffstat's first line then says so: the work stays in the worktree only).
 */
function repoLines(task: TaskDoc): string[] {
  if (!task.repo) return [];
  const lines = [`repo      ${task.repo.path}${task.repo.ref ? ` (from ${task.repo.ref})` : ''}`];
  const commit = task.commit;
  if (commit) {
    lines.push(`branch    ${commit.branch}`);
    lines.push(`commit    ${commit.sha.slice(0, 12)}: ${diffstatSummary(commit.diffstat)}`);
    const uncommitted = commit.diffstat?.split('\n')[0]?.trim() ?? '';
    if (uncommitted.startsWith('not committed')) lines.push(`          ${uncommitted}`);
  }
  return lines;
}

/** What `status` shows: each line of it, and each table cell, made printable and kept on its line. */
function describeTask(task: TaskDoc): string {
  const lines = [
    `task      ${task.id}`,
    `status    ${task.status}${task.error ? ` (${errorText(task.status, task.error)})` : ''}`,
    `agent     ${task.agent}${task.model ? ` (model ${task.model})` : ''}, priority ${task.priority}`,
    `created   ${task.createdAt} (${agoText(task.createdAt)})`,
    `duration  ${task.startedAt ? between(task.startedAt, task.finishedAt) : 'not started'}`,
  ];
  // The output may be long, and is the agent's bytes: status says how long it is and where to read it.
  if (task.status === 'succeeded' && task.result) {
    const chars = [...task.result.output].length;
    lines.push(`output    ${chars} chars, not shown: atelier status --json ${task.id} has it (result.output)`);
  }
  if (Object.keys(task.labels).length > 0) {
    lines.push(
      `labels    ${Object.entries(task.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
  }
  lines.push(...repoLines(task));
  lines.push(`history   ${task.links.temporalUi}`);
  lines.push(`logs      atelier logs ${TERMINAL_STATUSES.has(task.status) ? '' : '-f '}${task.id}`);
  let text = `${lines.map(printableInline).join('\n')}\n`;
  const attempts = task.attempts ?? [];
  if (attempts.length > 0) {
    text += `\nattempts (of ${task.maxAttempts ?? '?'})\n`;
    text += table(
      ['#', 'RESULT', 'EXIT', 'TOOK', 'WORKER', 'ERROR'],
      attempts.map((a) => [
        a.number,
        a.failureClass ?? 'running',
        a.exitCode,
        between(a.startedAt, a.finishedAt),
        a.worker,
        a.error,
      ]),
    );
  }
  const runs = task.runs ?? [];
  if (runs.length > 1) {
    text += '\nruns\n';
    text += table(
      ['RUN', 'KIND', 'STATUS', 'ATTEMPTS', 'ERROR', 'RUN ID'],
      runs.map((r) => [
        r.number,
        r.fromRun ? `${r.kind} of ${r.fromRun}` : r.kind,
        r.status,
        r.attempts.map((a) => a.number).join(','),
        r.error?.class,
        r.runId,
      ]),
    );
  }
  return text;
}

const status: Action = async (cli, id: string) => {
  const task = await cli.api.json<TaskDoc>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
  if (cli.json) cli.printJson(task);
  else cli.out(describeTask(task));
  return EXIT.ok;
};

interface ListOptions {
  status?: string;
  label: Record<string, string>;
  limit?: number;
  cursor?: string;
}

/**
 * The command for the next page: the cursor holds only a position, so the filters go with it, and the
 * API's URL when it came from --url (the token is left to ATELIER_TOKEN: a hint prints no secret).
 */
function nextPageCommand(cli: Cli, opts: ListOptions, cursor: string): string {
  const words = ['atelier'];
  if (cli.options.url !== (cli.io.env.ATELIER_URL ?? DEFAULT_URL)) words.push('--url', cli.options.url);
  words.push('list');
  if (opts.status) words.push('--status', opts.status);
  for (const [k, v] of Object.entries(opts.label)) words.push('--label', `${k}=${v}`);
  if (opts.limit !== undefined) words.push('--limit', String(opts.limit));
  words.push('--cursor', cursor);
  return words.map(shellQuote).join(' ');
}

const list: Action = async (cli, opts: ListOptions) => {
  const query = new URLSearchParams();
  if (opts.status) query.set('status', opts.status);
  for (const [k, v] of Object.entries(opts.label)) query.append('label', `${k}:${v}`);
  if (opts.limit !== undefined) query.set('limit', String(opts.limit));
  if (opts.cursor) query.set('cursor', opts.cursor);
  const page = await cli.api.json<{ items: TaskDoc[]; nextCursor: string | null }>(
    'GET',
    `/v1/tasks${query.size > 0 ? `?${query.toString()}` : ''}`,
  );
  if (cli.json) {
    cli.printJson(page);
    return EXIT.ok;
  }
  cli.out(
    table(
      ['ID', 'STATUS', 'AGENT', 'CREATED', 'TOOK', 'ERROR'],
      page.items.map((t) => [
        t.id,
        t.status,
        t.agent,
        agoText(t.createdAt),
        t.startedAt ? between(t.startedAt, t.finishedAt) : '',
        t.error?.class,
      ]),
    ),
  );
  if (page.nextCursor) cli.note(`more: ${nextPageCommand(cli, opts, page.nextCursor)}`);
  return EXIT.ok;
};

const cancel: Action = async (cli, id: string) => {
  const res = await cli.api.json<{ id: string; status: string }>('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
  if (cli.json) cli.printJson(res);
  else cli.note(`task ${res.id}: ${res.status}`);
  return EXIT.ok;
};

const rerun =
  (kind: 'retry' | 'reset'): Action =>
  async (cli, id: string, opts: WaitOptions) => {
    checkWaitOptions(opts);
    const run = await cli.api.json<{ id: string; run: number; runId: string; fromRun: number }>(
      'POST',
      `/v1/tasks/${encodeURIComponent(id)}/${kind}`,
    );
    if (!opts.wait) {
      if (cli.json) cli.printJson(run);
      else cli.note(`task ${run.id}: run ${run.run} started (${kind} of run ${run.fromRun}), run id ${run.runId}`);
      return EXIT.ok;
    }
    cli.note(`task ${run.id}: run ${run.run} started (${kind} of run ${run.fromRun})`);
    return waitAndReport(cli, run.id, opts);
  };

/** `--wait-timeout`, of the commands that take `--wait`. */
const waitTimeoutOption = (): Option =>
  new Option(
    '--wait-timeout <seconds>',
    'with --wait: stop waiting after this long (exit 7); the task goes on',
  ).argParser(integer('--wait-timeout', 1, 604_800));

export function registerTaskCommands(
  program: Command,
  bind: (action: Action) => (...args: unknown[]) => Promise<void>,
) {
  program
    .command('submit')
    .description('submit a task; the prompt comes from the arguments, --file, or stdin')
    .argument('[prompt...]', 'the prompt (quote it, or use --file or stdin)')
    .option('-f, --file <path>', 'read the prompt from a file (- for stdin)')
    .option('-a, --agent <name>', "agent profile (default: the server's default agent)")
    .option('-m, --model <model>', 'model for the agent')
    .option('-C, --workdir <dir>', 'directory the agent runs in (made absolute)')
    .option('--timeout <seconds>', 'per-attempt time limit', integer('--timeout', 1, 86_400))
    .option('--max-attempts <n>', 'attempts before the task fails', integer('--max-attempts', 1, 20))
    .option('--priority <1-5>', '1 is the highest', integer('--priority', 1, 5))
    .option('-l, --label <key=value>', 'a label (repeat for more)', collectLabel, {})
    .option('--idempotency-key <key>', 'submitting the same key again returns the same task')
    .option('--repo <dir>', 'git repository: the agent works in a worktree of its own on atelier/<task id>')
    .option('--ref <ref>', 'where the task branch starts (with --repo; default HEAD)')
    .option('--lock <glob>', 'a file lock, relative to the repository (repeat for more)', collect, [])
    .option('--fail-on-lock-violations', 'fail the task if it changes files outside its locks')
    .option(
      '-w, --wait',
      'wait for the outcome with a live progress line; exit 0 succeeded, 3 failed, 4 cancelled, 6 lost track',
    )
    .addOption(waitTimeoutOption())
    .action(bind(submit));

  program
    .command('status')
    .description("a task's status, attempts, runs and error")
    .argument('<id>', 'task id')
    .action(bind(status));

  program
    .command('list')
    .description('tasks, newest first')
    .option('-s, --status <status>', 'queued, running, succeeded, failed or cancelled')
    .option('-l, --label <key=value>', 'only tasks with this label (repeat for more)', collectLabelFilter, {})
    .option('-n, --limit <n>', 'tasks per page', integer('--limit', 1, 200))
    .option('--cursor <cursor>', 'the next page, as printed after the last one')
    .action(bind(list));

  program.command('cancel').description('cancel a task').argument('<id>', 'task id').action(bind(cancel));

  program
    .command('retry')
    .description('run a finished task again: same workflow id and input, a new run')
    .argument('<id>', 'task id')
    .option('-w, --wait', 'wait for the new run to finish; exit codes as submit --wait')
    .addOption(waitTimeoutOption())
    .action(bind(rerun('retry')));

  program
    .command('reset')
    .description("reset a failed task's workflow to just before its last failed step")
    .argument('<id>', 'task id')
    .option('-w, --wait', 'wait for the new run to finish; exit codes as submit --wait')
    .addOption(waitTimeoutOption())
    .action(bind(rerun('reset')));
}
