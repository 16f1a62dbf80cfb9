import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import type { Stack } from './stack';
import { processAlive } from './wait-for';

/** Pids of the direct children of `pid` (empty when it has none). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return []; // ps exits 1 when nothing matches
  }
}

/** Every process below `pid`: children, their children, and so on. */
export function descendantPids(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendantPids(child)]);
}

/**
 * Stops a stack the way an operator does (SIGTERM to `up`) and asserts a clean stop: exit code 0 and
 * none of the processes it had started is left running.
 */
export async function stopStackCleanly(stack: Stack): Promise<void> {
  const pid = stack.process.pid;
  assert.ok(pid !== undefined, 'the stack has a pid');
  const before = descendantPids(pid);
  // The api, the workflow worker and the agent worker at least.
  assert.ok(before.length >= 3, `the stack runs its services as child processes: ${before.join(', ')}`);
  const code = await stack.stop();
  assert.equal(code, 0, `the stack exits 0 on SIGTERM\n--- stack output ---\n${stack.output()}`);
  const left = before.filter((p) => processAlive(p));
  assert.deepEqual(left, [], 'no process of the stack outlives it');
}
