import { FAILURE_CLASSES, type FailureClass } from '../../workflows/definitions';
import { ANY_COMMAND_LAST_LINES, lastLines } from './last-lines';
import { resetTimeIn } from './parsers/reset-time';
import type { OutputParser, ParsedOutput } from './parsers/types';

/**
 * When an agent's rate limit resets: as its output's report gave it (its parser), else, for an attempt
 * classed `rate_limited` by its words (a CLI that died printing "429 Too Many Requests, try again in
 * 90s"), as its stderr says it, then, for any command (`text`), the last lines of its stdout; null
 * when none names a believable time. The stdout of an agent CLI is the agent's transcript (files it read, commands' output), where "try again in 3 days" may be anyone's
 * words: a time read there would send the task to the next agent and hold the agent's breaker open.
 */
export function rateLimitReset(
  failureClass: FailureClass,
  parsed: Pick<ParsedOutput, 'resetAt'>,
  parser: Pick<OutputParser, 'anyCommand'>,
  tails: { stderr: string; stdout: string },
  now = Date.now(),
): Date | null {
  if (parsed.resetAt !== undefined) return new Date(parsed.resetAt);
  if (failureClass !== FAILURE_CLASSES.rateLimited) return null;
  const at =
    resetTimeIn(tails.stderr, now) ??
    (parser.anyCommand ? resetTimeIn(lastLines(tails.stdout, ANY_COMMAND_LAST_LINES), now) : undefined);
  return at === undefined ? null : new Date(at);
}
