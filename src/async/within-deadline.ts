/** The rejection of withinDeadline: `work` did not settle in time. Its message names only `what`. */
export class DeadlinePassed extends Error {}

/**
 * What `work` resolves to, or a rejection (DeadlinePassed: "`what` did not answer within `ms` ms") once
 * `ms` have passed first. `work` itself goes on: this bounds the wait, not the work.
 */
export async function withinDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlinePassed(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
