import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';

/**
 * Set by test/run-tests.ts for every test file (and by the benchmark runner): the shared Temporal dev
 * server and database. Read when used, so a runner can set them after loading this module.
 */
export const testEnv = {
  get temporalAddress(): string {
    return required('TEMPORAL_ADDRESS');
  },
  get databaseUrl(): string {
    return required('DATABASE_URL');
  },
  get namespace(): string {
    return process.env.TEMPORAL_NAMESPACE ?? 'default';
  },
};

/** The repository root, from dist/test/support. */
export const ROOT = resolve(__dirname, '../../..');
export const STAND_IN_AGENT = resolve(ROOT, 'test/agents/stand-in-agent.mjs');
export const TEST_AGENTS_FILE = resolve(ROOT, 'test/agents/agents.yaml');

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test`);
  return value;
}

/** A task queue name no other test uses, so tests never steal each other's tasks. */
export const uniqueQueue = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
