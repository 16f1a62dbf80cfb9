import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { hostOfIdentity, workerIdentity } from '../../src/workers/worker-identity';
import { workerQueueFor } from '../../src/workers/worker-queue';

describe('worker identity', () => {
  it('differs for two workers started with the same name, pid and host, and so do their own queues', () => {
    // A container restarted in its pod: same hostname and, under tini, the same pid.
    const before = workerIdentity('agent-worker');
    const after = workerIdentity('agent-worker');
    assert.notEqual(after, before);
    assert.notEqual(workerQueueFor('atelier-agents', after), workerQueueFor('atelier-agents', before));
    for (const identity of [before, after]) {
      assert.match(identity, new RegExp(`^agent-worker:${process.pid}-[0-9a-f]{8}@`));
    }
  });

  it('still names its host where the host is read from an identity, as in the old and the SDK formats', () => {
    assert.equal(hostOfIdentity(workerIdentity('agent-worker')), hostname());
    assert.equal(hostOfIdentity('agent-worker:4242@vm'), 'vm');
    assert.equal(hostOfIdentity('4242@build-host'), 'build-host');
    assert.equal(hostOfIdentity('a-poller-without-host'), '');
  });
});
