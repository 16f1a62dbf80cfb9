import { statSync } from 'node:fs';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import type { AgentsFile } from '../../src/config/agents-file';
import type { AttemptStore } from '../../src/store/attempt-store';
import {
  FAILURE_CLASSES,
  NON_RETRYABLE_CLASSES,
  type FailureClass,
  type RunAgentInput,
  type RunAgentOutput,
} from '../../workflows/definitions';
import { buildInvocation } from './build-invocation';
import { LogWriter } from './log-writer';
import { runProcess, type ProcessEnd } from './run-process';

export interface AgentActivityDeps {
  agents: AgentsFile;
  store: AttemptStore;
  workerIdentity: string;
  /** The worker's environment, from which profiles pass through what they allow. */
  env: NodeJS.ProcessEnv;
  heartbeatIntervalMs?: number;
}

/** Output kept in memory for the attempt's record; beyond it only the byte count grows. */
const MAX_KEPT_OUTPUT = 8 * 1024 * 1024;
const TAIL_CHARS = 2048;

const fail = (failureClass: FailureClass, message: string): ApplicationFailure =>
  ApplicationFailure.create({
    type: failureClass,
    message,
    nonRetryable: NON_RETRYABLE_CLASSES.includes(failureClass),
  });

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

interface Outcome {
  failureClass: FailureClass;
  exitCode: number | null;
  error: string | null;
}

/**
 * `cancelRequested` tells a cancel asked for by the workflow (the task is cancelled) from the other
 * reasons the SDK aborts a run (worker shutdown, heartbeat lost): those are a crash of this attempt,
 * and the task goes on elsewhere.
 */
function outcomeOf(end: ProcessEnd, timeoutSeconds: number, cancelRequested: boolean): Outcome {
  switch (end.kind) {
    case 'exited':
      return end.exitCode === 0
        ? { failureClass: FAILURE_CLASSES.succeeded, exitCode: 0, error: null }
        : {
            failureClass: FAILURE_CLASSES.nonzeroExit,
            exitCode: end.exitCode,
            error: `agent exited with code ${end.exitCode}`,
          };
    case 'signalled':
      return { failureClass: FAILURE_CLASSES.crash, exitCode: null, error: `agent killed by ${end.signal}` };
    case 'timed_out':
      return {
        failureClass: FAILURE_CLASSES.timeout,
        exitCode: null,
        error: `agent ran past ${timeoutSeconds}s and was killed`,
      };
    case 'aborted':
      return cancelRequested
        ? { failureClass: FAILURE_CLASSES.cancelled, exitCode: null, error: 'agent run cancelled' }
        : {
            failureClass: FAILURE_CLASSES.crash,
            exitCode: null,
            error: 'agent run stopped: worker shutting down or lost',
          };
    case 'spawn_failed':
      return { failureClass: FAILURE_CLASSES.agentNotFound, exitCode: null, error: end.message };
  }
}

/**
 * Activities of the agent workers. `runAgent` runs one attempt of a task's agent CLI as a child process.
 * Timeouts: the task's own `timeoutSeconds` kills the process group; Temporal's start-to-close is that
 * plus a margin, and its heartbeat timeout detects a dead worker within seconds.
 * Idempotency: every write is keyed by (task id, attempt number).
 */
export function createAgentActivities(deps: AgentActivityDeps) {
  const heartbeatIntervalMs = deps.heartbeatIntervalMs ?? 2000;

  async function runAgent(input: RunAgentInput): Promise<RunAgentOutput> {
    const ctx = Context.current();
    const profile = deps.agents.agents[input.agent];
    if (!profile) throw fail(FAILURE_CLASSES.unknownAgent, `unknown agent "${input.agent}"`);
    if (input.workdir !== undefined && !isDirectory(input.workdir)) {
      throw fail(FAILURE_CLASSES.invalidInput, `workdir is not a directory: ${input.workdir}`);
    }
    const task = await deps.store.taskToRun(input.taskId, TAIL_CHARS);
    if (!task) throw fail(FAILURE_CLASSES.invalidInput, `task ${input.taskId} is not in the database`);
    // An earlier run of this attempt succeeded and committed, but its worker died before telling
    // Temporal: the agent has done its work once, and must not do it again.
    if (task.result) return task.result;

    const model = input.model ?? profile.model;
    await deps.store.startAttempt({
      taskId: input.taskId,
      attempt: input.attempt,
      agent: input.agent,
      model,
      worker: deps.workerIdentity,
    });

    const invocation = buildInvocation({ profile, prompt: task.prompt, model, workdir: input.workdir }, deps.env);
    const logs = new LogWriter(deps.store, input.taskId, input.attempt, (err) =>
      log.warn('could not store agent output', { taskId: input.taskId, error: err.message }),
    );
    const started = Date.now();
    let stdout = '';
    let outputBytes = 0;
    let lastLine = '';
    const heartbeat = setInterval(
      () => ctx.heartbeat({ elapsedMs: Date.now() - started, outputBytes, lastLine }),
      heartbeatIntervalMs,
    );
    let end: ProcessEnd;
    try {
      end = await runProcess({
        invocation,
        cwd: input.workdir,
        timeoutMs: input.timeoutSeconds * 1000,
        killGraceMs: profile.killGraceSeconds * 1000,
        signal: ctx.cancellationSignal,
        onOutput: (stream, text) => {
          outputBytes += Buffer.byteLength(text);
          logs.write(stream, text);
          if (stream === 'stdout' && stdout.length < MAX_KEPT_OUTPUT) stdout += text;
          const lines = text.split('\n').filter((l) => l.trim() !== '');
          if (lines.length > 0) lastLine = (lines[lines.length - 1] as string).slice(0, 200);
        },
      });
    } finally {
      clearInterval(heartbeat);
      await logs.close();
    }

    const outcome = outcomeOf(end, input.timeoutSeconds, ctx.cancellationDetails?.cancelRequested === true);
    await deps.store.finishAttempt({
      taskId: input.taskId,
      attempt: input.attempt,
      exitCode: outcome.exitCode,
      failureClass: outcome.failureClass,
      error: outcome.error,
      outputBytes,
      output: stdout,
    });
    if (outcome.failureClass === FAILURE_CLASSES.cancelled) throw new CancelledFailure(outcome.error ?? 'cancelled');
    if (outcome.failureClass !== FAILURE_CLASSES.succeeded) throw fail(outcome.failureClass, outcome.error ?? '');
    return { exitCode: 0, outputBytes, outputTail: stdout.slice(-TAIL_CHARS) };
  }

  return { runAgent };
}
