import { FAILURE_CLASSES, type FailureClass } from '../../workflows/definitions';
import { ANY_COMMAND_LAST_LINES, lastLines } from './last-lines';
import { matchPatterns } from './parsers/error-patterns';
import type { OutputParser, ParsedOutput, RunEnd } from './parsers/types';

export interface AttemptVerdict {
  failureClass: FailureClass;
  exitCode: number | null;
  error: string | null;
}

export interface VerdictInput {
  end: RunEnd;
  parsed: ParsedOutput;
  parser: Pick<OutputParser, 'exitCodeClass' | 'hasFinalRecord' | 'anyCommand'>;
  /** The last part of stdout and stderr, for patterns. */
  stdoutTail: string;
  stderrTail: string;
  /** The profile's own patterns, tried before the built-in ones. */
  profilePatterns: readonly (readonly [FailureClass, RegExp])[];
  timeoutSeconds: number;
  idleSeconds?: number;
  /** The workflow asked for the cancel (the task is cancelled), rather than a worker stopping. */
  cancelRequested: boolean;
}

/** Spawn errors that say the agent's program itself cannot run (missing, not executable, not a program). */
const PROGRAM_CANNOT_RUN = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOEXEC',
  'ENOTDIR',
  'EISDIR',
  'ELOOP',
  'ENAMETOOLONG',
]);

const verdict = (failureClass: FailureClass, exitCode: number | null, error: string | null): AttemptVerdict => ({
  failureClass,
  exitCode,
  error,
});

/**
 * One class per attempt. The order is the point:
 * 1. how the run was stopped (cancel, timeout, idle limit, lost worker), which no output can overrule;
 * 2. what the output itself reports (an error result, a rate-limit event), even when the exit code is 0;
 * 3. the profile's own patterns over stdout and stderr, unless the agent's final record reported
 *    success (its stdout then holds its work, which may quote anything);
 * 4. a clean success: exit 0 and, for structured formats, a usable final record;
 * 5. the family's exit codes, then the built-in patterns over stderr (its last lines only, for any
 *    command), for runs that failed;
 * 6. otherwise: `nonzero_exit`, `crash` (exit 0, but the final record never came) or `bad_output`.
 */
export function classifyAttempt(v: VerdictInput): AttemptVerdict {
  const { end, parsed } = v;
  switch (end.kind) {
    case 'aborted':
      return v.cancelRequested
        ? verdict(FAILURE_CLASSES.cancelled, null, 'agent run cancelled')
        : verdict(FAILURE_CLASSES.crash, null, 'agent run stopped: worker shutting down or lost');
    case 'cut_off':
      return verdict(
        FAILURE_CLASSES.crash,
        null,
        'agent stopped: its worker lost contact with Temporal, which runs the next attempt elsewhere',
      );
    case 'timed_out':
      return verdict(FAILURE_CLASSES.timeout, null, `agent ran past ${v.timeoutSeconds}s and was killed`);
    case 'stalled':
      return verdict(
        FAILURE_CLASSES.stalled,
        null,
        `agent printed nothing for ${v.idleSeconds ?? '?'}s and was killed`,
      );
    case 'spawn_failed':
      // The program cannot run at all, or the worker could not start it this time (out of processes,
      // memory or file descriptors; its spawner helper died): the first moves on, the second retries.
      // Arguments over the kernel's limit (a long prompt passed as one): the prompt does not fit this
      // agent, as with a context overflow. No retry of it helps; an agent that reads its prompt on stdin or
      // from a file can.
      if (end.code === 'E2BIG') {
        return verdict(
          FAILURE_CLASSES.contextOverflow,
          null,
          `${end.message}: the agent's arguments are longer than the system allows; pass a long prompt on stdin or in a prompt file`,
        );
      }
      return PROGRAM_CANNOT_RUN.has(end.code)
        ? verdict(FAILURE_CLASSES.agentNotFound, null, end.message)
        : verdict(FAILURE_CLASSES.crash, null, end.message);
    case 'signalled':
      return verdict(FAILURE_CLASSES.crash, null, `agent killed by ${end.signal}`);
    case 'connection_failed':
      return verdict(FAILURE_CLASSES.crash, null, end.message);
    default:
      break;
  }
  const exitCode = end.kind === 'exited' ? end.exitCode : null;
  const described = (fallback: string): string => parsed.error ?? fallback;

  if (parsed.failureClass !== undefined) {
    return verdict(parsed.failureClass, exitCode, described(`the agent reported ${parsed.failureClass}`));
  }
  const reportedSuccess = exitCode === 0 && parsed.final && v.parser.hasFinalRecord;
  if (!reportedSuccess) {
    const byProfile = matchPatterns(`${v.stdoutTail}\n${v.stderrTail}`, v.profilePatterns);
    if (byProfile !== undefined) {
      return verdict(byProfile, exitCode, `output matched the profile's ${byProfile} pattern`);
    }
  }

  if (end.kind === 'http_error') {
    return verdict(FAILURE_CLASSES.badOutput, null, described(`HTTP ${end.status}`));
  }
  if (exitCode === 0) {
    if (parsed.final || !v.parser.hasFinalRecord) return verdict(FAILURE_CLASSES.succeeded, 0, null);
    return verdict(FAILURE_CLASSES.crash, 0, 'the agent exited 0 without its final record');
  }
  const code = exitCode ?? -1;
  const byExit = v.parser.exitCodeClass?.(code);
  if (byExit !== undefined) return verdict(byExit, exitCode, described(`agent exited with code ${code} (${byExit})`));
  const stderr = v.parser.anyCommand ? lastLines(v.stderrTail, ANY_COMMAND_LAST_LINES) : v.stderrTail;
  const byPattern = matchPatterns(`${parsed.error ?? ''}\n${stderr}`);
  if (byPattern !== undefined) {
    return verdict(byPattern, exitCode, described(`agent exited with code ${code}; stderr says ${byPattern}`));
  }
  return verdict(FAILURE_CLASSES.nonzeroExit, exitCode, `agent exited with code ${code}`);
}
