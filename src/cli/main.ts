#!/usr/bin/env node
import { EXIT } from './exit-codes';
import { runCli } from './program';

// `atelier logs ID | head -5`: once the reader has gone, stop quietly, as `git log | head` does.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(EXIT.ok);
  });
}

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
