import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { inTransaction } from '../../src/db/transaction';

/** A pool of one connection that records its statements, failing those named in `failing`, and how it was released. */
function fakePool(failing: string[]) {
  const statements: string[] = [];
  const released: (Error | boolean | undefined)[] = [];
  const client = {
    query: async (statement: string | QueryConfig) => {
      const text = typeof statement === 'string' ? statement : statement.text;
      statements.push(text);
      if (failing.includes(text)) throw new Error(`${text} failed`);
      return { rows: [], rowCount: 0 };
    },
    release: (err?: Error | boolean) => released.push(err),
  } as unknown as PoolClient;
  const pool = { connect: async () => client } as unknown as Pool;
  return { pool, statements, released };
}

describe('inTransaction', () => {
  it('commits and gives the connection back', async () => {
    const { pool, statements, released } = fakePool([]);
    assert.equal(await inTransaction(pool, async (db) => (await db.query('SELECT 1'), 'done')), 'done');
    assert.deepEqual(statements, ['BEGIN', 'SELECT 1', 'COMMIT']);
    assert.deepEqual(released, [undefined]);
  });

  it('rolls back on an error and gives the connection back when the rollback worked', async () => {
    const { pool, statements, released } = fakePool(['UPDATE']);
    await assert.rejects(
      inTransaction(pool, (db) => db.query('UPDATE')),
      /UPDATE failed/,
    );
    assert.deepEqual(statements, ['BEGIN', 'UPDATE', 'ROLLBACK']);
    assert.deepEqual(released, [undefined]);
  });

  it('destroys a connection that cannot roll back, answering the original error', async () => {
    const { pool, released } = fakePool(['UPDATE', 'ROLLBACK']);
    await assert.rejects(
      inTransaction(pool, (db) => db.query('UPDATE')),
      /UPDATE failed/,
    );
    assert.equal(released.length, 1);
    assert.match(String(released[0]), /ROLLBACK failed/, 'released with the error: the pool destroys it');
  });
});
