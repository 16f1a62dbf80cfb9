import type { OutputParser, ParsedOutput } from './types';

/** Any command: stdout is the result, the exit code the outcome. Nothing in the output is interpreted. */
export function textParser(): OutputParser {
  return {
    hasFinalRecord: false,
    anyCommand: true,
    push() {
      // stdout is kept by the activity itself
    },
    finish(): ParsedOutput {
      return { final: true };
    },
  };
}
