import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * A worker process's identity in Temporal, in the worker registry and on the attempts it runs:
 * `<name>:<pid>-<random>@<host>`. The pid and host alone do not tell two starts apart: a container
 * restarted in its pod keeps its hostname and, under tini in a fresh PID namespace, its pid. The new
 * process would then poll the old one's own queue (worker-queue.ts) and take attempts whose worktree
 * was on the old container's disk. With a random part, that queue goes unpolled and the tasks move,
 * as for any lost worker.
 */
export const workerIdentity = (name: string): string =>
  `${name}:${process.pid}-${randomBytes(4).toString('hex')}@${hostname()}`;

/** The host an identity names (Atelier's, or the SDK's default `<pid>@<host>`); '' when it names none. */
export const hostOfIdentity = (identity: string): string => identity.split('@').slice(1).join('@');
