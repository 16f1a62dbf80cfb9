import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTransientDbError } from '../../src/db/transient';

/** An error as node-pg or the socket layer raises it. */
const withCode = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('which database errors are retried', () => {
  it('takes a restarting or unreachable server for a moment away, its host name that resolves to nothing too', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      '57P01',
      '08006',
    ]) {
      assert.equal(isTransientDbError(withCode(code)), true, code);
    }
    assert.equal(isTransientDbError(new Error('Connection terminated unexpectedly')), true);
  });

  it('does not retry what a retry cannot fix', () => {
    for (const code of ['23505', '42P01', '22P02']) {
      assert.equal(isTransientDbError(withCode(code)), false, code);
    }
    assert.equal(isTransientDbError(new Error('syntax error')), false);
    assert.equal(isTransientDbError(undefined), false);
  });
});
