import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, shown, startCli } from '../support/cli-process';
import { call, getTask, waitForEnd } from '../support/http-api';
import { stopStackCleanly } from '../support/process-tree';
import { startStack, type Stack } from '../support/stack';
import { git, initRepo } from '../support/git';
import { waitFor } from '../support/wait-for';

const TOKEN = 'cli-test-token';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** `atelier` against a running stack, as `node dist/src/cli/main.js` with ATELIER_URL and ATELIER_TOKEN. */
describe('the atelier CLI against a running stack', { timeout: 180_000 }, () => {
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let tmp: string;
  const atelier = (args: string[], input = '') => runCli(args, env, input);

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-cli-e2e-'));
    stack = await startStack({ ATELIER_API_TOKENS: TOKEN });
    env = { ATELIER_URL: stack.baseUrl, ATELIER_TOKEN: TOKEN };
  });

  after(async () => {
    try {
      if (stack) await stopStackCleanly(stack);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('submit --wait prints the output and exits 0 when the task succeeds', async () => {
    const r = await atelier(['submit', '--wait', '--label', 'suite=cli', '@print hello from the cli']);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'hello from the cli\n');
    assert.match(r.stderr, /succeeded/, 'the progress line ends with the outcome');
    assert.match(r.stderr, UUID);
  });

  it('submit --wait exits 3 when the task fails, with its error', async () => {
    const r = await atelier(['submit', '--wait', '--max-attempts', '1', '@stderr bad\n@exit 3']);
    assert.equal(r.code, 3, shown(r));
    assert.match(r.stderr, /failed: nonzero_exit: agent exited with code 3/);
    assert.equal(r.stdout, '');
  });

  it('submit --wait exits 4 when the task is cancelled meanwhile', async () => {
    const waiting = startCli(['submit', '--wait', '@hang'], env);
    const id = await waitFor('the CLI to print the task id', () => UUID.exec(waiting.stderr())?.[0]);
    await waitFor('the task to run', async () => (await getTask(stack.baseUrl, id, TOKEN)).status === 'running');
    const cancel = await atelier(['cancel', id]);
    assert.equal(cancel.code, 0, shown(cancel));
    assert.match(cancel.stderr, /cancelling/);
    const r = await waiting.done;
    assert.equal(r.code, 4, shown(r));
    assert.match(r.stderr, /cancelled/);
    assert.match(r.stderr, new RegExp(`^task ${id} cancelled: task cancelled\n`, 'm'), 'the class is not said twice');
  });

  it('reads the prompt from stdin and from --file; --json prints the API documents', async () => {
    const fromStdin = await atelier(['submit', '--wait'], '@print from stdin');
    assert.equal(fromStdin.code, 0, shown(fromStdin));
    assert.equal(fromStdin.stdout, 'from stdin\n');

    const file = join(tmp, 'prompt.txt');
    writeFileSync(file, '@print from a file\n');
    const submitted = await atelier(['submit', '--json', '--file', file, '--label', `run=${randomUUID()}`]);
    assert.equal(submitted.code, 0, shown(submitted));
    const doc = JSON.parse(submitted.stdout) as { id: string; status: string; links: { temporalUi: string } };
    assert.match(doc.id, UUID);
    assert.equal(doc.status, 'queued');
    await waitForEnd(stack.baseUrl, doc.id, 30_000, TOKEN);

    const status = await atelier(['status', doc.id, '--json']);
    assert.equal(status.code, 0, shown(status));
    const task = JSON.parse(status.stdout) as { status: string; result: { output: string } };
    assert.equal(task.status, 'succeeded');
    assert.equal(task.result.output, 'from a file\n');

    const human = await atelier(['status', doc.id]);
    assert.match(human.stdout, /status\s+succeeded/);
    assert.ok(human.stdout.includes(doc.links.temporalUi), 'links to the Temporal Web UI');

    const list = await atelier(['list', '--json', '--label', 'suite=cli', '--limit', '5']);
    assert.equal(list.code, 0, shown(list));
    const page = JSON.parse(list.stdout) as { items: { id: string; labels: Record<string, string> }[] };
    assert.ok(page.items.length > 0 && page.items.every((t) => t.labels.suite === 'cli'), list.stdout);
    const table = await atelier(['list', '--status', 'succeeded']);
    assert.match(table.stdout, /^ID\s+STATUS\s+AGENT/);
    assert.ok(table.stdout.includes(doc.id));
  });

  it('submits a task in a git worktree with its locks, and fails it on a lock violation when asked', async () => {
    const repo = join(tmp, 'repo');
    initRepo(repo);
    const r = await atelier([
      'submit',
      '--wait',
      '--max-attempts',
      '1',
      '--repo',
      repo,
      '--lock',
      'src/**',
      '--lock',
      'README.md',
      '--fail-on-lock-violations',
      '@pidfile outside.txt',
    ]);
    assert.equal(r.code, 3, shown(r));
    assert.match(r.stderr, /lock_violation/);
    const id = r.stderr.match(UUID)?.[0] as string;
    const task = (await getTask(stack.baseUrl, id, TOKEN)) as unknown as {
      locks: string[];
      failOnLockViolations: boolean;
      repo: { path: string };
      commit: { branch: string; lockViolations: string[] };
    };
    assert.deepEqual(task.locks, ['src/**', 'README.md']);
    assert.equal(task.failOnLockViolations, true);
    assert.equal(task.repo.path, repo);
    assert.deepEqual(task.commit.lockViolations, ['outside.txt']);
    assert.equal(git(repo, 'show', '--name-only', '--format=', task.commit.branch), 'outside.txt');
    const status = await atelier(['status', id]);
    assert.equal(status.code, 0, shown(status));
    assert.match(status.stdout, new RegExp(`^repo {6}${repo}$`, 'm'));
    assert.match(status.stdout, new RegExp(`^branch {4}${task.commit.branch}$`, 'm'));
    const sha = git(repo, 'rev-parse', task.commit.branch).slice(0, 12);
    assert.match(status.stdout, new RegExp(`^commit {4}${sha}: 1 file changed, 1 insertion\\(\\+\\)$`, 'm'));

    const refAlone = await atelier(['submit', '--ref', 'main', 'x']);
    assert.equal(refAlone.code, 2, shown(refAlone));
    assert.match(refAlone.stderr, /--ref needs --repo/);
  });

  it('logs -f prints output while the task runs and exits when it ends', async () => {
    // The agent waits between its lines until the test has seen the first one.
    const gate = join(tmp, `cli-follow-${randomUUID()}`);
    const submitted = await atelier(['submit', `@print first line\n@wait-file ${gate}\n@print second line`]);
    const id = submitted.stdout.trim();
    assert.match(id, UUID, shown(submitted));
    const following = startCli(['logs', '-f', id], env);
    await waitFor('the first line to arrive', () => following.stdout().includes('first line\n'), { timeoutMs: 20_000 });
    // Live: the task is still running and the CLI still following.
    assert.equal((await getTask(stack.baseUrl, id, TOKEN)).status, 'running');
    assert.equal(following.child.exitCode, null);
    writeFileSync(gate, '');
    const r = await following.done;
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, 'first line\nsecond line\n');
    const plain = await atelier(['logs', id]);
    assert.equal(plain.stdout, 'first line\nsecond line\n');
  });

  it('retry --wait runs a finished task again, and status shows the runs', async () => {
    const counter = join(tmp, `cli-retry-${randomUUID()}`);
    const first = await atelier([
      'submit',
      '--wait',
      '--max-attempts',
      '1',
      `@fail-until 2 ${counter}\n@print second time lucky`,
    ]);
    assert.equal(first.code, 3, shown(first));
    const id = UUID.exec(first.stderr)?.[0] ?? '';
    const retried = await atelier(['retry', '--wait', id]);
    assert.equal(retried.code, 0, shown(retried));
    assert.equal(retried.stdout, 'second time lucky\n');
    const status = await atelier(['status', id]);
    assert.match(status.stdout, /runs\n/);
    assert.match(status.stdout, /retry of 1\s+succeeded/);
  });

  it('workers, plan submit and top talk to the API; --json on each', async () => {
    const workers = await atelier(['workers', '--json']);
    if (workers.code === 0) {
      const doc = JSON.parse(workers.stdout) as { workers: { identity: string }[]; queues: unknown[] };
      assert.ok(Array.isArray(doc.workers) && Array.isArray(doc.queues));
    } else {
      assert.match(workers.stderr, /has no workers endpoint/, shown(workers));
    }

    const plan = join(tmp, 'plan.yaml');
    writeFileSync(
      plan,
      "tasks:\n  - key: one\n    prompt: '@print hello'\n  - key: two\n    prompt: x\n    dependsOn: [one]\n",
    );
    const planned = await atelier(['plan', 'submit', plan, '--json']);
    assert.equal(planned.code, 0, shown(planned));
    const submitted = JSON.parse(planned.stdout) as { id: string; status: string };
    assert.match(submitted.id, UUID);
    assert.equal(submitted.status, 'running');
    const stored = await call(stack.baseUrl, 'GET', `/v1/plans/${submitted.id}`, { token: TOKEN });
    assert.equal(stored.status, 200, stored.text);
    const view = stored.json as { tasks: { key: string; dependsOn: string[] }[] };
    assert.deepEqual(
      view.tasks.map((t) => [t.key, t.dependsOn]),
      [
        ['one', []],
        ['two', ['one']],
      ],
    );
    await waitFor('the plan to succeed', async () => {
      const now = await call(stack.baseUrl, 'GET', `/v1/plans/${submitted.id}`, { token: TOKEN });
      return (now.json as { status: string }).status === 'succeeded';
    });

    const top = await atelier(['top', '--once', '--json']);
    assert.equal(top.code, 0, shown(top));
    const frame = JSON.parse(top.stdout.trim().split('\n')[0] ?? '{}') as {
      dashboard: { counts: { running: number }; queues: { role: string; pollers: number | null }[] };
    };
    assert.equal(typeof frame.dashboard.counts.running, 'number');
    assert.deepEqual(
      frame.dashboard.queues.map((q) => q.role),
      ['workflows', 'agents'],
    );
    assert.ok(
      frame.dashboard.queues.every((q) => (q.pollers ?? 0) >= 1),
      top.stdout,
    );
    const screen = await atelier(['top', '--once']);
    assert.equal(screen.code, 0, shown(screen));
    assert.match(screen.stdout, /QUEUES[\s\S]*WORKERS[\s\S]*RUNNING/);
  });

  it('exits 2 on bad usage and 1 when the API refuses, with a message', async () => {
    const noPrompt = await atelier(['submit']);
    assert.equal(noPrompt.code, 2, shown(noPrompt));
    assert.match(noPrompt.stderr, /no prompt/);
    const unknown = await atelier(['frobnicate']);
    assert.equal(unknown.code, 2, shown(unknown));
    const badOption = await atelier(['submit', '--priority', '9', 'x']);
    assert.equal(badOption.code, 2, shown(badOption));

    const noToken = await runCli(['list'], { ATELIER_URL: stack.baseUrl });
    assert.equal(noToken.code, 1, shown(noToken));
    assert.match(noToken.stderr, /answered 401: a valid bearer token is required/);
    const missing = await atelier(['status', randomUUID()]);
    assert.equal(missing.code, 1, shown(missing));
    assert.match(missing.stderr, /answered 404/);
    const badAgent = await atelier(['submit', '--agent', 'nope', 'x']);
    assert.equal(badAgent.code, 1, shown(badAgent));
    assert.match(badAgent.stderr, /answered 400:\n {2}agent: unknown agent "nope"/);
    assert.equal(badAgent.stderr.split('unknown agent').length, 2, `the field is shown once: ${shown(badAgent)}`);

    const unreachable = await runCli(['list'], { ATELIER_URL: 'http://127.0.0.1:9' });
    assert.equal(unreachable.code, 1, shown(unreachable));
    assert.match(unreachable.stderr, /cannot reach the Atelier API at http:\/\/127.0.0.1:9/);
    // The HTTP API still answers the same to plain requests.
    assert.equal((await call(stack.baseUrl, 'GET', '/v1/tasks', { token: TOKEN })).status, 200);
  });
});
