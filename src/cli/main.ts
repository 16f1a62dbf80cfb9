#!/usr/bin/env node
import { runCli } from './program';

/** `npx atelier …`: see docs/cli.md. */
runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`atelier: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
