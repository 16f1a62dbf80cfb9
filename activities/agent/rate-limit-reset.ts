import { FAILURE_CLASSES, type FailureClass } from '../../workflows/definitions';
import { resetTimeIn } from './parsers/reset-time';
import type { ParsedOutput } from './parsers/types';

/**
 * When an agent's rate limit resets: as its output's report gave it (its parser), else, for an attempt
 * classed `rate_limited` by its words (a CLI that died printing "429 Too Many Requests, try again in
 * 90s"), as its stderr, then its stdout, say it; null when neither names a believable time.
 */
export function rateLimitReset(
  failureClass: FailureClass,
  parsed: Pick<ParsedOutput, 'resetAt'>,
  tails: { stderr: string; stdout: string },
  now = Date.now(),
): Date | null {
  const at =
    parsed.resetAt ??
    (failureClass === FAILURE_CLASSES.rateLimited
      ? (resetTimeIn(tails.stderr, now) ?? resetTimeIn(tails.stdout, now))
      : undefined);
  return at === undefined ? null : new Date(at);
}
