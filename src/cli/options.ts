import { InvalidArgumentError } from 'commander';

/** A commander parser for an integer option from `min` to `max`; anything else is a usage error (exit 2). */
export const integer =
  (name: string, min: number, max: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return n;
  };
