import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SPAWNER_BINARY } from '../../src/workers/agent-spawn';
import { AGENT_HEARTBEAT_TIMEOUT_SECONDS, workflowIdForTask } from '../../workflows/definitions';
import { descendantPids } from '../support/process-tree';
import { processAlive, waitFor } from '../support/wait-for';
import { query, timeToReconnect, watchReadiness, type ChaosEnv } from './chaos-env';
import { inParallel, submitWithRetry } from './client';
import { badRequests } from './corpus';
import type { AgentWorkerKill } from './executions';
import { runsInTemporal, verifyExactlyOnce, type Verdict } from './verify';

export interface ScenarioReport {
  name: string;
  description: string;
  ok: boolean;
  problems: string[];
  measurements: Record<string, number | string>;
  verdict?: Verdict;
}

export interface Scale {
  quick: boolean;
}

/** The seeds' goals: a failure detected within 30 s, and recovered from within 2 minutes. */
export const DETECTION_GOAL_MS = 30_000;
export const RECOVERY_GOAL_MS = 120_000;

const label = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;
const kill = (pid: number | undefined): void => {
  if (pid === undefined) throw new Error('the service to kill is not running');
  process.kill(pid, 'SIGKILL');
};

/** Kills agent worker `pid` (SIGKILL), noting it in `kills` for the verdict. */
const killAgentWorker = (pid: number | undefined, kills: AgentWorkerKill[]): void => {
  if (pid === undefined) throw new Error('the agent worker to kill is not running');
  kills.push({ pid, at: Date.now() });
  kill(pid);
};

/** A stand-in agent's prompt that runs `seconds`: `key` first, a line of data, makes it the task's own. */
const sleeping = (key: string, seconds: number): string => `${key}\n@sleep ${seconds}`;

/** The agent worker's pid, found by the identity it records on the attempt it runs. */
async function workerOfRunningAttempt(env: ChaosEnv, run: string): Promise<number> {
  const row = await waitFor('an attempt to be running', async () => {
    const res = await query<{ worker: string }>(
      env,
      `SELECT a.worker FROM attempts a JOIN tasks t ON t.id = a.task_id
       WHERE t.labels @> $1 AND a.finished_at IS NULL AND a.worker IS NOT NULL LIMIT 1`,
      [{ run }],
    );
    return res.rows[0];
  });
  const pid = /agent-worker:(\d+)-/.exec(row.worker)?.[1];
  if (!pid) throw new Error(`cannot read a pid from worker identity ${row.worker}`);
  return Number(pid);
}

const pidIn = (file: string): number | undefined =>
  existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined;

/** The command name of process `pid` (at most 15 characters, as the kernel keeps it). */
const commandOf = (pid: number): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/**
 * Kill -9 the agent worker running an agent that has started a child: the atelier-spawner helper, the
 * agent and its child die with the worker, and another worker runs the next attempt.
 */
export async function agentWorkerKill(env: ChaosEnv): Promise<ScenarioReport> {
  const pidFiles = mkdtempSync(join(env.dir, 'pids-'));
  try {
    return await killMidRun(env, pidFiles);
  } finally {
    rmSync(pidFiles, { recursive: true, force: true });
  }
}

async function killMidRun(env: ChaosEnv, pidFiles: string): Promise<ScenarioReport> {
  const run = label('agent-kill');
  const since = new Date();
  const agentFile = join(pidFiles, 'agent');
  const childFile = join(pidFiles, 'child');
  await submitWithRetry(env, {
    prompt: `@pidfile ${agentFile}\n@spawn-child ${childFile}\n@sleep 3`,
    agent: 'stand-in',
    idempotencyKey: run,
    labels: { run },
    maxAttempts: 3,
  });
  const workerPid = await workerOfRunningAttempt(env, run);
  const agentPid = await waitFor('the agent pid', () => pidIn(agentFile));
  const childPid = await waitFor("the agent's child's pid", () => pidIn(childFile));
  // Every process below the worker: the spawner helper (unless the worker starts agents itself), the
  // agent, and the agent's child.
  const below = descendantPids(workerPid);
  const spawners = below.filter((pid) => commandOf(pid) === 'atelier-spawner');
  const problems: string[] = [];
  if (!below.includes(agentPid) || !below.includes(childPid)) {
    problems.push(`the agent (${agentPid}) and its child (${childPid}) are not below the worker: ${below.join(', ')}`);
  }
  if (existsSync(DEFAULT_SPAWNER_BINARY) && spawners.length === 0) {
    problems.push(`no atelier-spawner below the worker: ${below.join(', ')}`);
  }
  const killedAt = Date.now();
  kill(workerPid);
  const goneAfterMs = await waitFor(
    'every process below the killed worker to be gone',
    () => (below.every((pid) => !processAlive(pid)) ? Date.now() - killedAt : undefined),
    { timeoutMs: 5000 },
  ).catch(() => undefined);
  if (goneAfterMs === undefined) {
    problems.push(
      `processes below the killed worker still run: ${below.filter((pid) => processAlive(pid)).join(', ')}`,
    );
  }
  const verdict = await verifyExactlyOnce(env, {
    label: run,
    tasks: 1,
    timeoutMs: 120_000,
    since,
    agentWorkerKills: [{ pid: workerPid, at: killedAt }],
  });
  const next = await query<{ started_at: Date; worker: string }>(
    env,
    `SELECT a.started_at, a.worker FROM attempts a JOIN tasks t ON t.id = a.task_id
     WHERE t.labels @> $1 AND a.number = 2`,
    [{ run }],
  );
  const recoveryMs = (next.rows[0]?.started_at.getTime() ?? Number.NaN) - killedAt;
  problems.push(...verdict.problems);
  // Detection is Temporal's heartbeat timeout; then the workflow starts the next attempt at once.
  if (!(recoveryMs <= (AGENT_HEARTBEAT_TIMEOUT_SECONDS + 5) * 1000)) {
    problems.push(`next attempt after ${recoveryMs} ms`);
  }
  return {
    name: 'agent-worker-kill',
    description: 'kill -9 the agent worker mid-run, its agent having started a child',
    ok: problems.length === 0,
    problems,
    measurements: {
      killToNextAttemptMs: recoveryMs,
      heartbeatTimeoutMs: AGENT_HEARTBEAT_TIMEOUT_SECONDS * 1000,
      processesBelowWorker: below.length,
      spawnerProcesses: spawners.length,
      processesGoneAfterMs: goneAfterMs ?? 'never',
      nextAttemptWorker: next.rows[0]?.worker ?? '?',
    },
    verdict,
  };
}

type Disruption = 'workflow-worker-kill' | 'temporal-restart' | 'api-restart' | 'postgres-restart';

async function disrupt(env: ChaosEnv, kind: Disruption): Promise<void> {
  switch (kind) {
    case 'workflow-worker-kill':
      kill(env.stack.servicePid('workers/workflow-worker'));
      return;
    case 'api-restart':
      kill(env.stack.servicePid('api/main'));
      return;
    case 'temporal-restart':
      await env.restartTemporal(1000);
      return;
    case 'postgres-restart':
      await env.pg.restart(1000);
      return;
  }
}

/** Disruptions that take the service's readiness down: PostgreSQL, Temporal or the API itself away. */
const TAKES_READINESS_DOWN: readonly Disruption[] = ['temporal-restart', 'api-restart', 'postgres-restart'];

/**
 * What falls short of the seeds' goals, all from the disruption: /health/ready must report an outage
 * of what it checks within DETECTION_GOAL_MS (a killed workflow worker's successor may take over
 * before the check notices), and the service be ready again, and workers polling, within
 * RECOVERY_GOAL_MS.
 */
function recoveryProblems(
  kind: Disruption,
  readiness: { notReadyAfterMs?: number; readyAgainAfterMs?: number; notReadyBefore: number },
  pollingAgainMs: number | undefined,
): string[] {
  const { notReadyAfterMs, readyAgainAfterMs, notReadyBefore } = readiness;
  const problems: string[] = [];
  if (notReadyBefore > 0)
    problems.push(`/health/ready answered not ready ${notReadyBefore} times before the disruption`);
  if (notReadyAfterMs === undefined) {
    if (TAKES_READINESS_DOWN.includes(kind)) problems.push('/health/ready never reported the outage');
  } else {
    if (TAKES_READINESS_DOWN.includes(kind) && notReadyAfterMs > DETECTION_GOAL_MS) {
      problems.push(`/health/ready reported the outage only after ${notReadyAfterMs} ms`);
    }
    if (readyAgainAfterMs === undefined) problems.push('/health/ready did not report the service ready again');
    else if (readyAgainAfterMs > RECOVERY_GOAL_MS)
      problems.push(`the service was ready again only after ${readyAgainAfterMs} ms`);
  }
  if (pollingAgainMs !== undefined && pollingAgainMs > RECOVERY_GOAL_MS) {
    problems.push(`workers polled again only after ${pollingAgainMs} ms`);
  }
  return problems;
}

/**
 * Tasks running while one part of the system dies and comes back: every task succeeds, its agent run
 * once. Workers that lost their connection (a killed workflow worker's successor, every worker after
 * Temporal restarted) must poll again by themselves, as Temporal sees them; and /health/ready must
 * report an outage of what it checks, then the service ready again, within the seeds' goals.
 */
export async function disruptionWhileRunning(env: ChaosEnv, kind: Disruption, scale: Scale): Promise<ScenarioReport> {
  const run = label(kind);
  const since = new Date();
  const n = scale.quick ? 8 : 30;
  const keys = Array.from({ length: n }, (_, i) => `${run}-${i}`);
  const submit = (key: string) =>
    submitWithRetry(env, {
      prompt: sleeping(key, 1),
      agent: 'stand-in-arg',
      idempotencyKey: key,
      labels: { run },
    }).then(() => undefined);
  await inParallel(keys.slice(0, n / 2), 8, submit);
  await workerOfRunningAttempt(env, run); // tasks are mid-run when it breaks
  const readiness = watchReadiness(env);
  const workflowWorker = env.stack.servicePid('workers/workflow-worker');
  const at = Date.now();
  const during = inParallel(keys.slice(n / 2), 4, submit);
  await disrupt(env, kind);
  const pollingAgainMs =
    kind === 'workflow-worker-kill' && workflowWorker !== undefined
      ? await timeToReconnect(env, at, { queues: 'workflow', gonePid: workflowWorker })
      : kind === 'temporal-restart'
        ? await timeToReconnect(env, at, { queues: 'both' })
        : undefined;
  await during;
  const verdict = await verifyExactlyOnce(env, { label: run, tasks: n, timeoutMs: 180_000, since });
  const seen = await readiness.stop(at);
  const problems = [...verdict.problems, ...recoveryProblems(kind, seen, pollingAgainMs)];
  return {
    name: kind,
    description: `${kind.replace(/-/g, ' ')} while ${n} tasks run`,
    ok: problems.length === 0,
    problems,
    measurements: {
      tasks: n,
      ...(pollingAgainMs !== undefined && { workersPollingAgainAfterMs: pollingAgainMs }),
      ...(seen.notReadyAfterMs !== undefined && { notReadyAfterMs: seen.notReadyAfterMs }),
      ...(seen.readyAgainAfterMs !== undefined && { readyAgainAfterMs: seen.readyAgainAfterMs }),
    },
    verdict,
  };
}

/**
 * The big one: many tasks, a tenth sent twice with the same key, workers killed three times, the
 * Temporal server and the API restarted once. Exactly one task per key must result, and succeed, its
 * agent run once but for the attempts lost with a killed agent worker (each may add one run).
 */
export async function bigRun(env: ChaosEnv, scale: Scale): Promise<ScenarioReport> {
  const run = label('big');
  const since = new Date();
  const n = scale.quick ? 60 : 1000;
  const keys = Array.from({ length: n }, (_, i) => `${run}-${i}`);
  // Each resent key right after its original: both are in flight at once, among the disruptions.
  const submissions = keys.flatMap((key, i) => (i % 10 === 0 ? [key, key] : [key]));
  const resent = submissions.length - n;
  const answers: { key: string; status: number; id: string }[] = [];
  const submit = async (key: string) => {
    const answer = await submitWithRetry(env, {
      prompt: sleeping(key, 0.2),
      agent: 'stand-in-arg',
      idempotencyKey: key,
      labels: { run },
    });
    answers.push({ key, ...answer });
  };
  const kills: AgentWorkerKill[] = [];
  const started = Date.now();
  const submitting = inParallel(submissions, 16, submit);
  const done = async (): Promise<number> =>
    Number(
      (
        await query<{ n: string }>(
          env,
          `SELECT count(*) AS n FROM tasks WHERE labels @> $1 AND status IN ('succeeded', 'failed', 'cancelled')`,
          [{ run }],
        )
      ).rows[0]?.n,
    );
  const tasksDone = (fraction: number): [string, () => Promise<boolean>] => [
    `${Math.round(fraction * 100)}% of tasks done`,
    async () => (await done()) >= fraction * n,
  ];
  // The API is killed while half the submissions are still to come; the rest as the tasks run.
  const disruptions: [[string, () => Promise<boolean>], () => Promise<void>][] = [
    [
      ['half the submissions answered', async () => answers.length >= submissions.length / 2],
      async () => kill(env.stack.servicePid('api/main')),
    ],
    [tasksDone(0.15), async () => killAgentWorker(env.stack.servicePid('workers/agent-worker'), kills)],
    [tasksDone(0.3), async () => kill(env.stack.servicePid('workers/workflow-worker'))],
    [tasksDone(0.45), () => env.restartTemporal(1000)],
    [tasksDone(0.75), async () => killAgentWorker(env.stack.servicePid('workers/agent-worker'), kills)],
  ];
  for (const [[what, reached], act] of disruptions) {
    await waitFor(what, reached, { timeoutMs: 600_000, intervalMs: 100 });
    await waitFor(
      'the service to run',
      () =>
        env.stack.servicePid('workers/agent-worker') !== undefined &&
        env.stack.servicePid('workers/workflow-worker') !== undefined &&
        env.stack.servicePid('api/main') !== undefined,
    );
    await act();
  }
  await submitting;
  const verdict = await verifyExactlyOnce(env, {
    label: run,
    tasks: n,
    timeoutMs: 900_000,
    since,
    agentWorkerKills: kills,
  });
  const problems = [...verdict.problems];
  // One task per key, whatever each answer's status (a 201 lost with the API comes back a 200 on retry).
  const idsByKey = new Map<string, Set<string>>();
  for (const a of answers) idsByKey.set(a.key, (idsByKey.get(a.key) ?? new Set()).add(a.id));
  const split = [...idsByKey.values()].filter((ids) => ids.size !== 1).length;
  const distinct = new Set(answers.map((a) => a.id)).size;
  if (split > 0) problems.push(`${split} keys answered with more than one task`);
  if (distinct !== n) problems.push(`${distinct} distinct tasks answered, expected ${n}`);
  return {
    name: 'big',
    description: `${n} tasks, ${resent} resubmitted with the same key, workers killed 3 times, Temporal and API restarted once`,
    ok: problems.length === 0,
    problems,
    measurements: {
      tasks: n,
      submissions: answers.length,
      created: answers.filter((a) => a.status === 201).length,
      replayedAnswers: answers.filter((a) => a.status === 200).length,
      makespanS: Math.round((Date.now() - started) / 100) / 10,
    },
    verdict,
  };
}

/** Malformed and hostile requests at volume: only 4xx, nothing started, the service stays healthy. */
export async function badInputCorpus(env: ChaosEnv, scale: Scale): Promise<ScenarioReport> {
  const requests = badRequests(scale.quick ? 300 : 3000);
  const since = new Date();
  // Everything a request could have started: tasks, plans, and the agents' attempts.
  const count = async () =>
    JSON.stringify(
      (
        await query(
          env,
          `SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM plans) AS plans,
             (SELECT count(*) FROM attempts) AS attempts`,
        )
      ).rows[0],
    );
  const before = await count();
  const answers = new Map<number, number>();
  await inParallel(requests, 16, async (r) => {
    let status: number;
    try {
      const res = await fetch(`${env.stack.baseUrl}${r.path}`, { method: r.method, headers: r.headers, body: r.body });
      await res.arrayBuffer();
      status = res.status;
    } catch {
      status = 0; // the connection was refused or reset
    }
    answers.set(status, (answers.get(status) ?? 0) + 1);
  });
  const after = await count();
  // Temporal lists workflows a moment after they start: a task submitted now, once listed, shows that
  // the listing has caught up with what started before it (the dev server's one history shard queues
  // its visibility records in the order they are made).
  const run = label('bad-input-marker');
  const marker = workflowIdForTask(
    (await submitWithRetry(env, { prompt: run, agent: 'stand-in-arg', idempotencyKey: run, labels: { run } })).id,
  );
  const runs = await waitFor('Temporal to list the marker task', async () => {
    const listed = await runsInTemporal(env, since, ['agentTaskWorkflow', 'planWorkflow']);
    return listed.has(marker) && listed;
  });
  const started = [...runs.keys()].filter((id) => id !== marker);
  const ready = (await fetch(`${env.stack.baseUrl}/health/ready`)).status;
  const problems: string[] = [];
  const wrong = [...answers.entries()].filter(([s]) => s < 400 || s >= 500);
  if (wrong.length > 0) problems.push(`answers outside 4xx: ${JSON.stringify(Object.fromEntries(wrong))}`);
  if (after !== before) problems.push(`rows were created: ${before} before, ${after} after`);
  if (started.length > 0) problems.push(`${started.length} task or plan workflows were started in Temporal`);
  if (ready !== 200) problems.push(`/health/ready answered ${ready} afterwards`);
  return {
    name: 'bad-input-corpus',
    description: `${requests.length} malformed and hostile requests`,
    ok: problems.length === 0,
    problems,
    measurements: { requests: requests.length, ...Object.fromEntries([...answers].map(([s, n]) => [`http${s}`, n])) },
  };
}

/**
 * Prompts full of shell syntax run as data: no canary file appears, and each task's agent ran once
 * (no process a shell would have started), got its prompt byte for byte (as the agent logged it, and
 * as it echoed it).
 */
export async function metacharacterCorpus(env: ChaosEnv, scale: Scale): Promise<ScenarioReport> {
  const run = label('metachar');
  const since = new Date();
  const canaries: string[] = [];
  const prompts = Array.from({ length: scale.quick ? 10 : 40 }, (_, i) => {
    const canary = join(env.dir, `canary-${randomUUID()}`);
    canaries.push(canary);
    const tricks = [
      `; touch ${canary}`,
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `| touch ${canary}`,
      `&& touch ${canary} || touch ${canary}`,
      `\n touch ${canary} \n`,
      `'; touch ${canary}; '`,
      `"; touch ${canary}; "`,
      `> ${canary}`,
      `{prompt} {model} $HOME \${PATH} %s %n \\x00 <(touch ${canary})`,
    ];
    return tricks[i % tricks.length] as string;
  });
  await inParallel<{ p: string; i: number }>(
    prompts.map((p, i) => ({ p, i })),
    8,
    async ({ p, i }) => {
      await submitWithRetry(env, {
        prompt: p,
        agent: i % 2 === 0 ? 'stand-in' : 'stand-in-arg',
        idempotencyKey: `${run}-${i}`,
        labels: { run },
      });
    },
  );
  const verdict = await verifyExactlyOnce(env, { label: run, tasks: prompts.length, timeoutMs: 120_000, since });
  const outputs = await query<{ prompt: string; output: string | null }>(
    env,
    `SELECT t.prompt, a.output FROM tasks t JOIN attempts a ON a.task_id = t.id AND a.number = t.result_attempt
     WHERE t.labels @> $1`,
    [{ run }],
  );
  const problems = [...verdict.problems];
  const created = canaries.filter((c) => existsSync(c));
  if (created.length > 0) problems.push(`${created.length} canary files were created`);
  const altered = outputs.rows.filter((r) => r.output !== (r.prompt.endsWith('\n') ? r.prompt : `${r.prompt}\n`));
  if (altered.length > 0) problems.push(`${altered.length} prompts did not reach the agent verbatim`);
  // Every prompt must have run and been echoed (the verdict requires every task to succeed).
  if (outputs.rows.length !== prompts.length) {
    problems.push(`${outputs.rows.length} of ${prompts.length} tasks have their agent's output`);
  }
  return {
    name: 'metacharacter-corpus',
    description: `${prompts.length} prompts of shell syntax through stdin and argv profiles`,
    ok: problems.length === 0,
    problems,
    measurements: { prompts: prompts.length, canariesCreated: created.length },
    verdict,
  };
}
