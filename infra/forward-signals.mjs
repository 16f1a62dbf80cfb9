#!/usr/bin/env node
// Runs a Node script as a child and passes stop signals on to it, as infra/bootstrap.mjs does once it
// has installed and built: `node infra/forward-signals.mjs SCRIPT [args]` is bootstrap without that.
// Plain Node with built-ins only: it runs before node_modules exists.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The pid of npm when npm runs this process (`npm run …` sets npm_lifecycle_event): its parent now. */
export const npmParent = () => (process.env.npm_lifecycle_event ? process.ppid : undefined);

/** util-linux setpriv, which makes the kernel signal a child when its parent dies (see parent-death-signal.ts). */
const SETPRIV = '/usr/bin/setpriv';
/** How often npm is looked for: killed with SIGKILL, it can pass nothing on. */
const NPM_CHECK_MS = 1000;

/**
 * Runs `node script ...args` in this process group, exits with its exit code, and passes on a stop
 * signal the child could not have received itself: a SIGTERM, SIGINT or SIGHUP sent to this pid alone
 * (by `kill`, or by npm, which passes SIGINT and SIGTERM to its script's shell; the package.json
 * scripts `exec` node so that the shell is this process). A terminal's Ctrl-C reaches the child
 * twice (from the terminal and from here), which it takes as one request: it ignores repeats. Each
 * signal is passed on once; the child takes SIGHUP as SIGTERM.
 * Killed with SIGKILL, this process cannot pass anything on: the kernel sends the child SIGTERM then
 * (setpriv's parent-death signal, where setpriv is). With `npmPid`, the npm that runs this process,
 * npm gone (killed so) is SIGTERM for the child too, and the child is not started if npm is gone
 * already. Only under npm: a process started by hand in the background outlives its shell, as before.
 */
export function runForwardingSignals(script, args, cwd, npmPid) {
  if (npmPid !== undefined && process.ppid !== npmPid) {
    process.stderr.write('[atelier] npm has gone: not starting\n');
    process.exit(1);
  }
  const argv = [
    ...(existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM', '--'] : []),
    process.execPath,
    script,
    ...args,
  ];
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: 'inherit' });
  const forwarded = new Set();
  const forward = (signal) => {
    if (forwarded.has(signal)) return;
    forwarded.add(signal);
    child.kill(signal);
  };
  // Listeners for good: with none, a repeat (or a SIGHUP from a closed terminal) would kill this
  // process with the default action and leave the child without its parent.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => forward(signal));
  }
  if (npmPid !== undefined) {
    const npmCheck = setInterval(() => {
      if (process.ppid === npmPid) return;
      clearInterval(npmCheck);
      forward('SIGTERM');
    }, NPM_CHECK_MS);
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runForwardingSignals(resolve(process.argv[2]), process.argv.slice(3), process.cwd(), npmParent());
}
