import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import type { AgentProfile, AgentsFile } from '../../src/config/agents-file';
import { DEFAULT_BREAKER } from '../../src/gate/breaker';
import type { AdmissionStore, AgentGateConfig, AttemptKey } from '../../src/store/admission-store';
import type { AttemptStore } from '../../src/store/attempt-store';
import type { AttemptUsageStore } from '../../src/store/attempt-usage-store';
import {
  DEFAULT_POLICIES,
  FAILURE_CLASSES,
  NON_RETRYABLE_CLASSES,
  type AttemptFailureDetails,
  type FailureClass,
  type FailurePolicy,
  type RunAgentInput,
  type RunAgentOutput,
} from '../../workflows/definitions';
import { buildInvocation } from './build-invocation';
import { classifyAttempt, type AttemptVerdict } from './classify-attempt';
import { attemptCost } from './cost';
import { LogWriter } from './log-writer';
import { createParser, type OutputParser, type RunEnd } from './parsers';
import { Tail } from './parsers/line-splitter';
import { rateLimitReset } from './rate-limit-reset';
import { runOllama } from './run-ollama';
import type { SpawnAgent } from './agent-process';
import { runProcess, type CutOff } from './run-process';
import { fitToStartToClose, type StopLimits } from './fit-to-start-to-close';
import { SecretRedactor } from './secret-redactor';
import { serviceSecretsIn } from './service-secrets';
import { workdirProblem } from '../../src/fs/is-directory';

export interface AgentActivityDeps {
  agents: AgentsFile;
  store: AttemptStore;
  workerIdentity: string;
  /** The worker's environment, from which profiles pass through what they allow. */
  env: NodeJS.ProcessEnv;
  /** The cluster-wide gate: breakers, limits, budgets (PostgreSQL). */
  admission: AdmissionStore;
  /** Where each attempt's cost, tokens and session go. */
  usage: AttemptUsageStore;
  heartbeatIntervalMs?: number;
  /** Tells the task next in line for one of `agent`'s limited slots that one is free (slot-waiter-waker.ts). */
  wakeSlotWaiter?: (agent: string, maxConcurrent: number) => Promise<void>;
  /** Tells the tasks waiting for `agent` that its probe closed its breaker (breaker-waiter-waker.ts). */
  wakeBreakerWaiters?: (agent: string) => Promise<void>;
  /**
   * Called once the attempt's agent has exited (or, for an agent with a concurrency limit and for a
   * half-open breaker's probe, once its cluster-wide slot is released): the worker's slot may go to the
   * next agent while the attempt's records are written (agent-slot-interceptor.ts `agentProcessEnded`).
   */
  agentExited?: (ctx: Context) => void;
  /**
   * Stops the agents when the worker is cut off from Temporal (src/workers/temporal-contact.ts);
   * `confirm` asks Temporal once more, for an attempt that arrives while the worker counts as cut off.
   */
  cutOff?: CutOff & { confirm: () => Promise<void> };
  /** Commits what a successful agent left in its task's worktree (worktree.activities.ts `saveTaskWork`). */
  saveWork?: (worktreePath: string, taskId: string, agent: string) => Promise<unknown>;
  /** How agent processes are started (src/workers/agent-spawn.ts); unset: directly by this process. */
  spawn?: SpawnAgent;
  /**
   * When the attempt reached the worker (`performance.now()`), before it waited in line for a slot
   * (agent-slot-interceptor.ts `attemptArrivedAt`): its start-to-close timeout runs from about then.
   * Unset, or undefined: when `runAgent` was called.
   */
  arrivedAt?: (ctx: Context) => number | undefined;
}

/**
 * Of stdout, the end kept in memory for the attempt's record (a text agent's answer, and its tail):
 * where its last words are. The logs keep its start.
 */
const MAX_KEPT_OUTPUT = 8 * 1024 * 1024;
const TAIL_CHARS = 2048;

/** A failed attempt, typed with its class; the details carry what the workflow's policy needs. */
const fail = (failureClass: FailureClass, message: string, details?: AttemptFailureDetails): ApplicationFailure =>
  ApplicationFailure.create({
    type: failureClass,
    message,
    nonRetryable: NON_RETRYABLE_CLASSES.includes(failureClass),
    details: details ? [details] : undefined,
  });

/** The profile's policy for a class, else the default; sent with the failure so the workflow need not read the agents file. */
const policyOf = (profile: AgentProfile | undefined, failureClass: FailureClass): FailurePolicy | undefined =>
  failureClass === FAILURE_CLASSES.succeeded
    ? undefined
    : (profile?.policies?.[failureClass] ?? DEFAULT_POLICIES[failureClass]);

const gateConfigOf = (profile: AgentProfile): AgentGateConfig => ({
  maxConcurrent: profile.limits?.maxConcurrent,
  startsPerMinute: profile.limits?.startsPerMinute,
  breaker: { ...DEFAULT_BREAKER, ...profile.breaker },
});

/** How an admitted attempt ended, for the gate's release (set before the attempt's failure is thrown). */
interface Ended {
  verdict?: AttemptVerdict;
  resetAt?: Date | null;
  /** The worker's slot went to the next agent when this one exited (`agentExited`). */
  slotHandedOn?: boolean;
  /** The lease renewal under way, if one is: the release waits for it, lest it take the slot again after. */
  renewing?: Promise<void>;
}

/**
 * How long an attempt's release waits for a lease renewal under way; one that lands later took the
 * slot again, and its lease is removed then.
 */
const RENEWAL_WAIT_MS = 5000;

/**
 * An agent that starts this long after its activity did heartbeats first (src/workers/temporal-contact.ts
 * counts on it); sooner, the activity's start stands in for a heartbeat, and none is sent.
 */
export const FRESH_START_MS = 250;

/**
 * How often a running attempt renews its slot's lease, at most (checked at each heartbeat): a third of
 * the lease at the longest, so it never lapses while the agent runs (see AdmissionStore).
 */
const LEASE_RENEW_MS = 5000;

/**
 * Activities of the agent workers. `runAgent` runs one attempt of a task's agent: a CLI as a child
 * process, or (`ollama-http`) one streamed HTTP call. A gated attempt first passes the cluster-wide gate
 * (budgets, the agent's circuit breaker, its concurrency and start-rate limits); when held back nothing
 * runs, no attempt is recorded, and the answer carries `waiting`. The output is read by the profile's
 * parser, and the attempt gets one failure class (classify-attempt.ts), its cost, tokens and session.
 * The secrets the agent was given are masked in its output before anything reads or stores it.
 * Timeouts: the task's own `timeoutSeconds` kills the run, and so does the profile's `idleSeconds` of
 * silence (`stalled`); Temporal's start-to-close is the timeout plus a margin, which the kill grace
 * (and, after a long wait for a slot, the time limit) is cut to fit (fit-to-start-to-close.ts); its
 * heartbeat timeout detects a dead worker within seconds.
 * Idempotency: every write is keyed by (task id, run, attempt number); the gate's lease by the same.
 */
export function createAgentActivities(deps: AgentActivityDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 2000;
  /** Agents whose kill grace was cut to fit an attempt, said once per agent (it is their profile's doing). */
  const graceCutSaid = new Set<string>();
  const renewLeaseMs = Math.min(LEASE_RENEW_MS, (deps.admission.leaseSeconds * 1000) / 3);
  const patterns = new Map(
    Object.entries(deps.agents.agents).map(([name, profile]) => [
      name,
      Object.entries(profile.errorPatterns ?? {}).flatMap(([cls, sources]) =>
        (sources ?? []).map((source) => [cls as FailureClass, new RegExp(source, 'i')] as const),
      ),
    ]),
  );

  async function runAgent(input: RunAgentInput): Promise<RunAgentOutput> {
    const ctx = Context.current();
    const receivedAt = performance.now();
    const arrivedAt = deps.arrivedAt?.(ctx) ?? receivedAt;
    // Own keys only: a workflow started by hand may name "toString", which every object has.
    const profile = Object.hasOwn(deps.agents.agents, input.agent) ? deps.agents.agents[input.agent] : undefined;
    if (!profile) {
      throw fail(FAILURE_CLASSES.unknownAgent, `unknown agent "${input.agent}"`, {
        policy: DEFAULT_POLICIES.unknown_agent,
      });
    }
    const unusable = input.workdir === undefined ? undefined : workdirProblem(input.workdir);
    if (unusable !== undefined) {
      throw fail(FAILURE_CLASSES.invalidInput, `workdir ${unusable}: ${input.workdir}`, {
        policy: policyOf(profile, FAILURE_CLASSES.invalidInput),
      });
    }
    // Attempts, logs and events are kept per workflow run (a retried or reset task runs again).
    const runId = ctx.info.workflowExecution?.runId;
    const task = await heartbeating({ starting: true }, () => deps.store.taskToRun(input.taskId, TAIL_CHARS, runId));
    if (!task) throw fail(FAILURE_CLASSES.invalidInput, `task ${input.taskId} is not in the database`);
    // An attempt of this run succeeded and committed, but its worker died before telling Temporal: the
    // agent has done its work once, and must not do it again. The answer names that attempt.
    if (task.result) return task.result;

    const key: AttemptKey = { taskId: input.taskId, runId: runId ?? '', attempt: input.attempt };
    const gate = gateConfigOf(profile);
    let probe = false;
    cancelledBeforeStart(ctx);
    if (input.gated) {
      const admission = await heartbeating({ starting: true }, () =>
        deps.admission.acquire(input.agent, key, deps.workerIdentity, gate),
      );
      if (!admission.admitted) return { exitCode: 0, outputBytes: 0, outputTail: '', waiting: admission.wait };
      probe = admission.probe;
    }
    const ended: Ended = {};
    // The next attempt here would find this one's cluster-wide slot still taken (a limited agent), or
    // its half-open breaker's probe still under way: then the slot waits for the release.
    const freeAtExit = !input.gated || (gate.maxConcurrent === undefined && !probe);
    try {
      return await runAdmitted(input, profile, task.prompt, runId, key, ended, freeAtExit, receivedAt, arrivedAt);
    } finally {
      if (input.gated) await wrapUp(input, gate, key, ended);
    }
  }

  /**
   * Ends an attempt cancelled while it read the task or waited for admission (a slow database), before
   * its attempt opens: it opens no attempt row and starts no agent. Asked before admission too, where it
   * takes no cluster-wide slot or start-rate token either (after admission, the token is spent).
   */
  function cancelledBeforeStart(ctx: Context): void {
    if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled before its agent started');
  }

  /**
   * Runs `work`, heartbeating `details` meanwhile: before and after the agent's run, writes may wait out
   * a database restart for a while, and Temporal must not take this worker for dead then.
   */
  async function heartbeating<T>(details: object, work: () => Promise<T>): Promise<T> {
    const ctx = Context.current();
    const keepAlive = setInterval(() => ctx.heartbeat(details), heartbeatIntervalMs);
    try {
      return await work();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /**
   * Frees the attempt's cluster-wide slot, heartbeating meanwhile, and sets off the wake of the next task
   * waiting for one, and of the tasks waiting for the agent's breaker when its probe closed it.
   */
  function wrapUp(input: RunAgentInput, gate: AgentGateConfig, key: AttemptKey, ended: Ended): Promise<void> {
    return heartbeating({ finishing: true }, async () => {
      // Not for ever: a renewal stuck on a dead connection must not hold the slot and the attempt's end.
      // One that lands after the release took the slot again: its lease goes once it has.
      const renewing = ended.renewing;
      if (renewing) {
        const landed = await Promise.race([renewing.then(() => true), delay(RENEWAL_WAIT_MS, false, { ref: false })]);
        if (!landed) {
          void renewing
            .then(() => deps.admission.dropLease(key))
            .catch((err: Error) =>
              log.warn('could not free the agent slot a late renewal took', {
                taskId: input.taskId,
                error: err.message,
              }),
            );
        }
      }
      // Frees the slot, and tells the breaker; a throw before the verdict counts as a crash.
      const closedBreaker = await deps.admission
        .release(input.agent, key, ended.verdict?.failureClass ?? FAILURE_CLASSES.crash, gate, ended.resetAt)
        .catch((err: Error) => {
          log.warn('could not release the agent slot', { taskId: input.taskId, error: err.message });
          return false;
        });
      if (!ended.slotHandedOn) deps.agentExited?.(Context.current());
      // Wakes are not awaited: a slow Temporal frontend must not hold the attempt's answer (past its
      // start-to-close timeout, even). A task a wake misses looks again at its next recheck.
      if (closedBreaker && deps.wakeBreakerWaiters) {
        void deps
          .wakeBreakerWaiters(input.agent)
          .catch((err: Error) =>
            log.warn('could not wake the tasks waiting for the breaker', { agent: input.agent, error: err.message }),
          );
      }
      if (gate.maxConcurrent !== undefined && deps.wakeSlotWaiter) {
        void deps
          .wakeSlotWaiter(input.agent, gate.maxConcurrent)
          .catch((err: Error) =>
            log.warn('could not wake the next task waiting for a slot', { agent: input.agent, error: err.message }),
          );
      }
    });
  }

  async function runAdmitted(
    input: RunAgentInput,
    profile: AgentProfile,
    prompt: string,
    runId: string | undefined,
    key: AttemptKey,
    ended: Ended,
    freeAtExit: boolean,
    /** `performance.now()` when the activity began. */
    receivedAt: number,
    /** `performance.now()` when the attempt reached the worker (`AgentActivityDeps.arrivedAt`). */
    arrivedAt: number,
  ): Promise<RunAgentOutput> {
    const ctx = Context.current();
    const model = input.model ?? profile.model;
    // Before the attempt opens: a model refused here (invalid_input) leaves no attempt behind.
    // An Ollama agent is an HTTP call: it gets no environment, so none of the worker's values can reach its output.
    const invocation =
      profile.output === 'ollama-http'
        ? undefined
        : buildInvocation(
            { profile, prompt, model, workdir: input.workdir, task: { id: input.taskId, attempt: input.attempt } },
            deps.env,
          );
    const opened = await heartbeating({ starting: true }, async () => {
      // This attempt reached the worker, so the line may be back before the worker has noticed.
      await deps.cutOff?.confirm();
      cancelledBeforeStart(ctx);
      return deps.store.startAttempt({
        taskId: input.taskId,
        runId,
        attempt: input.attempt,
        agent: input.agent,
        model,
        worker: deps.workerIdentity,
      });
    });
    if (!opened) {
      // Taken for lost while it waited (a database outage, say): the task has moved on without it.
      throw fail(FAILURE_CLASSES.crash, `attempt ${input.attempt} was closed before its agent could start`);
    }

    const logs = new LogWriter(deps.store, { taskId: input.taskId, runId }, input.attempt, (err) =>
      log.warn('could not store agent output', { taskId: input.taskId, error: err.message }),
    );
    const parser = createParser(profile.output);
    const stdoutTail = new Tail();
    const stderrTail = new Tail();
    const stdout = new Tail(MAX_KEPT_OUTPUT);
    const started = Date.now();
    let outputBytes = 0;
    let lastLine = '';
    let renewedAt = started;
    const heartbeat = setInterval(() => {
      ctx.heartbeat({ elapsedMs: Date.now() - started, outputBytes, lastLine });
      if (input.gated && Date.now() - renewedAt >= renewLeaseMs && ended.renewing === undefined) {
        renewedAt = Date.now();
        ended.renewing = deps.admission
          .renew(input.agent, key, deps.workerIdentity)
          .then((live) => {
            if (!live)
              log.warn(
                "the agent slot's lease had lapsed: it is held again, and the agent's limits may be exceeded until a run ends",
                {
                  taskId: input.taskId,
                  agent: input.agent,
                },
              );
          })
          .catch((err: Error) =>
            log.warn('could not renew the agent slot', { taskId: input.taskId, error: err.message }),
          )
          .finally(() => {
            ended.renewing = undefined;
          });
      }
    }, heartbeatIntervalMs);
    const record = (stream: 'stdout' | 'stderr', text: string): void => {
      logs.write(stream, text);
      parser.push(stream, text);
      (stream === 'stdout' ? stdoutTail : stderrTail).push(text);
      if (stream === 'stdout') stdout.push(text);
      const lines = text.split('\n').filter((l) => l.trim() !== '');
      if (lines.length > 0) lastLine = (lines[lines.length - 1] as string).slice(0, 200);
    };
    // Everything the output reaches (logs, parser, heartbeat, tails, the attempt's record and failure)
    // gets it with the secrets the agent was given masked, and the service's own (an Ollama run has no others).
    const redactor = new SecretRedactor(invocation?.secrets ?? serviceSecretsIn(deps.env), record);
    const onOutput = (stream: 'stdout' | 'stderr', text: string): void => {
      outputBytes += Buffer.byteLength(text);
      redactor.write(stream, text);
    };
    const idleTimeoutMs = profile.idleSeconds === undefined ? undefined : profile.idleSeconds * 1000;
    const limits = stopLimits(input, profile, invocation !== undefined, arrivedAt);
    let end: RunEnd;
    let endedAt = 0;
    // Temporal's heartbeat clock runs from the activity's start, or its last heartbeat: fresh when the
    // agent starts, so a cut-off worker stops it in time (CutOff).
    if (performance.now() - receivedAt >= FRESH_START_MS) ctx.heartbeat({ elapsedMs: 0, outputBytes: 0, lastLine: '' });
    // The heartbeat (and the cluster-wide lease it renews) stops however the run ends, a throw included.
    try {
      try {
        end =
          invocation === undefined
            ? await runOllama({
                baseUrl: profile.baseUrl as string,
                model: model ?? '',
                prompt,
                timeoutMs: limits.timeoutMs,
                idleTimeoutMs,
                signal: ctx.cancellationSignal,
                onOutput,
              })
            : await runProcess({
                invocation,
                cwd: input.workdir,
                timeoutMs: limits.timeoutMs,
                idleTimeoutMs,
                killGraceMs: limits.killGraceMs,
                signal: ctx.cancellationSignal,
                cutOff: deps.cutOff,
                onOutput,
                spawn: deps.spawn,
              });
      } finally {
        endedAt = performance.now();
        redactor.flush();
        if (freeAtExit) {
          deps.agentExited?.(ctx);
          ended.slotHandedOn = true;
        }
        await logs.close();
      }
      return await finishRun(input, profile, runId, ended, {
        end,
        endedAt,
        parser,
        stdout: stdout.toString(),
        stdoutTail,
        stderrTail,
        outputBytes,
        timeoutMs: limits.timeoutMs,
      });
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * The agent's time limit and kill grace, cut to what is left of the attempt's start-to-close timeout
   * (fit-to-start-to-close.ts), so that Temporal never runs the next attempt while this one's agent
   * lives. A cut grace is logged once per agent, a cut time limit for each attempt.
   */
  function stopLimits(input: RunAgentInput, profile: AgentProfile, isProcess: boolean, arrivedAt: number): StopLimits {
    const ctx = Context.current();
    const wanted = {
      timeoutMs: input.timeoutSeconds * 1000,
      killGraceMs: isProcess ? profile.killGraceSeconds * 1000 : 0,
    };
    const leftMs = arrivedAt + ctx.info.startToCloseTimeoutMs - performance.now();
    const limits = fitToStartToClose(wanted, leftMs);
    if (limits.killGraceMs < wanted.killGraceMs && !graceCutSaid.has(input.agent)) {
      graceCutSaid.add(input.agent);
      log.warn("the agent's kill grace is cut to end before Temporal's start-to-close timeout", {
        agent: input.agent,
        killGraceSeconds: profile.killGraceSeconds,
        killGraceMs: Math.round(limits.killGraceMs),
      });
    }
    if (limits.timeoutMs < wanted.timeoutMs) {
      log.warn("the agent's time limit is cut to end before Temporal's start-to-close timeout", {
        agent: input.agent,
        timeoutSeconds: input.timeoutSeconds,
        timeoutMs: Math.round(limits.timeoutMs),
      });
    }
    return limits;
  }

  /**
   * Commits a successful agent's work before its attempt closes: a task moved to another worker after
   * this point (this one lost) finds the work on its branch, and runs nothing again. The workflow
   * commits the worktree anyway once the attempt answers, so a failed commit is logged, and the attempt
   * still closes as the success it is (failing it would make the next attempt run the agent again),
   * marked unsaved: should this worker be lost before it answers, the work is not on the branch, and
   * the next attempt runs the agent again after all. Answers whether the work is saved.
   */
  async function saveWork(workdir: string, taskId: string, agent: string): Promise<boolean> {
    if (!deps.saveWork) return true;
    try {
      await deps.saveWork(workdir, taskId, agent);
      return true;
    } catch (err) {
      log.warn("could not commit the agent's work; the workflow commits it", {
        taskId,
        error: (err as Error).message,
      });
      return false;
    }
  }

  /**
   * Judges and records the ended run. The heartbeat goes on meanwhile: these writes may wait out a
   * database restart, and the worker must not look lost while they do.
   */
  async function finishRun(
    input: RunAgentInput,
    profile: AgentProfile,
    runId: string | undefined,
    ended: Ended,
    run: {
      end: RunEnd;
      /** `performance.now()` when the agent's process ended. */
      endedAt: number;
      parser: OutputParser;
      stdout: string;
      stdoutTail: Tail;
      stderrTail: Tail;
      outputBytes: number;
      /** The agent's time limit, as cut to its attempt's start-to-close (`stopLimits`). */
      timeoutMs: number;
    },
  ): Promise<RunAgentOutput> {
    const ctx = Context.current();
    const { end, endedAt, parser, stdout, stdoutTail, stderrTail, outputBytes } = run;
    const parsed = parser.finish(end);
    const verdict = classifyAttempt({
      end,
      parsed,
      parser,
      stdoutTail: stdoutTail.toString(),
      stderrTail: stderrTail.toString(),
      profilePatterns: patterns.get(input.agent) ?? [],
      timeoutSeconds: Math.round(run.timeoutMs / 100) / 10,
      idleSeconds: profile.idleSeconds,
      cancelRequested: ctx.cancellationDetails?.cancelRequested === true,
    });
    const costUsd = attemptCost(parsed, profile.pricing);
    const resetAt = rateLimitReset(verdict.failureClass, parsed, parser, {
      stderr: stderrTail.toString(),
      stdout: stdoutTail.toString(),
    });
    ended.verdict = verdict;
    ended.resetAt = resetAt;
    await deps.usage.record({
      taskId: input.taskId,
      runId,
      attempt: input.attempt,
      agent: input.agent,
      costUsd: costUsd ?? null,
      inputTokens: parsed.inputTokens ?? null,
      cachedInputTokens: parsed.cachedInputTokens ?? null,
      outputTokens: parsed.outputTokens ?? null,
      turns: parsed.turns ?? null,
      sessionId: parsed.sessionId ?? null,
      resultText: parsed.text ?? null,
      resetAt,
    });
    const saved =
      verdict.failureClass !== FAILURE_CLASSES.succeeded || !input.deferSuccess || !input.workdir
        ? true
        : await saveWork(input.workdir, input.taskId, input.agent);
    await deps.store.finishAttempt({
      taskId: input.taskId,
      runId,
      attempt: input.attempt,
      exitCode: verdict.exitCode,
      failureClass: verdict.failureClass,
      error: verdict.error,
      outputBytes,
      output: stdout,
      deferSuccess: input.deferSuccess,
      workUnsaved: !saved,
      endedAt,
    });
    if (verdict.failureClass === FAILURE_CLASSES.cancelled) throw new CancelledFailure(verdict.error ?? 'cancelled');
    if (verdict.failureClass !== FAILURE_CLASSES.succeeded) {
      throw fail(verdict.failureClass, verdict.error ?? '', {
        policy: policyOf(profile, verdict.failureClass),
        resetAt: resetAt?.getTime() ?? null,
      });
    }
    // Only what the agent reported: the result travels in the workflow's history.
    const output: RunAgentOutput = {
      exitCode: verdict.exitCode ?? 0,
      outputBytes,
      outputTail: (parsed.text ?? stdout).slice(-TAIL_CHARS),
      agent: input.agent,
      ...(costUsd !== undefined && { costUsd }),
      ...(parsed.inputTokens !== undefined && { inputTokens: parsed.inputTokens }),
      ...(parsed.outputTokens !== undefined && { outputTokens: parsed.outputTokens }),
      ...(parsed.turns !== undefined && { turns: parsed.turns }),
      ...(parsed.sessionId !== undefined && { sessionId: parsed.sessionId }),
      ...(!saved && { workUnsaved: true }),
    };
    return output;
  }

  return { runAgent };
}
