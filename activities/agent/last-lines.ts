/**
 * Of the output of any command (not an agent CLI), the non-empty lines read for its error and a rate
 * limit's reset: the last, where a program prints the error that ended it. The lines before are its
 * work, and a test runner's "AuthenticationError" or a build's retried "connection error" there must not
 * move the task to the next agent, nor count toward opening the agent's breaker. A fatal error followed
 * by a long stack trace is missed, and the run is `nonzero_exit`: retried, the safe side.
 */
export const ANY_COMMAND_LAST_LINES = 5;

/** The last `count` lines of `text` that are not blank. */
export function lastLines(text: string, count: number): string {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(-count)
    .join('\n');
}
