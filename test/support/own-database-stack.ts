import { after, before } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { stopStackCleanly } from './process-tree';
import { createScratchDatabase, type ScratchDatabase } from './scratch-database';
import { startStack, type Stack } from './stack';
import { testEnv } from './test-env';

/** A stack on a database of its own, with a pool on that database and a Temporal client beside it. */
export interface OwnDatabaseStack {
  stack: Stack;
  pool: Pool;
  client: Client;
}

/**
 * Starts, in the calling `describe`'s `before`, a stack whose API and workers use a database of their
 * own (named after `name`), for tests whose sweeps must see only their own rows; stops it and drops
 * the database in its `after`. The fields are set once `before` has run.
 */
export function ownDatabaseStack(name: string, env: NodeJS.ProcessEnv): OwnDatabaseStack {
  const own = {} as OwnDatabaseStack;
  let db: ScratchDatabase | undefined;
  let temporal: Connection | undefined;
  before(async () => {
    db = await createScratchDatabase(name);
    own.pool = new Pool({ connectionString: db.url, max: 4 });
    temporal = await Connection.connect({ address: testEnv.temporalAddress });
    own.client = new Client({ connection: temporal, namespace: testEnv.namespace });
    own.stack = await startStack({ DATABASE_URL: db.url, ...env });
  });
  after(async () => {
    try {
      if (own.stack) await stopStackCleanly(own.stack);
    } finally {
      await own.pool?.end();
      await temporal?.close();
      await db?.drop();
    }
  });
  return own;
}
