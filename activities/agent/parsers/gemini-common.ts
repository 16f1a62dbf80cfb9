import { FAILURE_CLASSES, type FailureClass } from '../../../workflows/definitions';
import { httpStatusClass, matchPatterns } from './error-patterns';

/**
 * Gemini CLI's exit codes (its FatalError classes): 41 authentication, 42 bad input, 44 sandbox, 52
 * configuration, 53 turn limit, 55 untrusted workspace. 1 is any other failure.
 */
export function geminiExitCodeClass(exitCode: number): FailureClass | undefined {
  switch (exitCode) {
    case 41:
      return FAILURE_CLASSES.auth;
    case 53:
      return FAILURE_CLASSES.maxTurns;
    case 42:
    case 44:
    case 52:
    case 55:
      return FAILURE_CLASSES.invalidInput;
    default:
      return undefined;
  }
}

/**
 * The `type` of Gemini CLI's report of a model turn that came back empty or broken: no text (or only
 * thinking), no finish reason, a malformed tool call, a response cut at the output limit, or one its
 * safety, recitation or other policy blocked. Its message may say "If your context window is near
 * capacity, try using /compress", which is advice, not the cause.
 */
export const INVALID_STREAM = 'INVALID_STREAM';
/** The words of Gemini CLI's reports of such a turn, where it gives them without their type. */
export const BROKEN_TURN =
  /\bThe model returned\b|\bInvalid stream\b|\binvalid chunk\b|\bfinish reason\b|\bmalformed (tool|function) call\b|\/compress\b|\bblocked due to\b/i;
/** Gemini CLI's words for a response a policy blocked ("… was blocked due to safety settings."). */
const BLOCKED = /\bblocked due to\b/i;

/** The class of a Gemini CLI `error` object ({type, message, code}). */
export function geminiErrorClass(error: Record<string, unknown>): FailureClass {
  const type = typeof error.type === 'string' ? error.type : '';
  const message = typeof error.message === 'string' ? error.message : '';
  const code = typeof error.code === 'number' ? error.code : undefined;
  // A glitch of the model this time, retried on the same agent; a blocked response would be blocked
  // again, and moves on.
  if (type === INVALID_STREAM) return BLOCKED.test(message) ? FAILURE_CLASSES.badOutput : FAILURE_CLASSES.overloaded;
  if (/TurnLimit/i.test(type)) return FAILURE_CLASSES.maxTurns;
  if (/Auth/i.test(type)) return FAILURE_CLASSES.auth;
  // TerminalQuotaError (a daily or plan quota), RetryableQuotaError (a per-minute one), whatever the code;
  // but Gemini CLI throws a RetryableQuotaError for a 503 too (the model overloaded, its retries spent),
  // which the server's words tell ("The model is overloaded.", "No capacity available for model …").
  if (/QuotaError/i.test(type)) {
    return matchPatterns(message) === FAILURE_CLASSES.overloaded
      ? FAILURE_CLASSES.overloaded
      : FAILURE_CLASSES.rateLimited;
  }
  // Fatal errors carry the exit code as their code.
  const byExitCode = code === undefined ? undefined : geminiExitCodeClass(code);
  if (byExitCode) return byExitCode;
  const byStatus = code === undefined ? undefined : httpStatusClass(code);
  return byStatus ?? matchPatterns(`${type} ${message}`) ?? FAILURE_CLASSES.badOutput;
}
