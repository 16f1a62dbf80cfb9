import type { Cli } from '../context';

/** A command's body: gets the CLI context and commander's arguments, returns the exit code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Action = (cli: Cli, ...args: any[]) => Promise<number>;

/** Wrong use of a command that commander cannot see (a missing prompt, say): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
