/** The most files a failure's message names. */
const NAMED_FILES = 20;

/**
 * A list of files for a failure's message: the first 20, then how many more (with `unnamed`, files the
 * list itself had left out). A failure travels into the task's history and, for a plan's task, into the
 * plan's, where a failure is not shortened as a result is (`resultForPlan`): a plan of 200 tasks naming
 * 1,000 files each would hold megabytes.
 */
export function namedFiles(files: readonly string[], unnamed = 0): string {
  const named = files.slice(0, NAMED_FILES);
  const more = files.length - named.length + unnamed;
  return `${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}
