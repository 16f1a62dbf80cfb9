import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/logging/logger';
import { Supervisor } from '../../src/up/supervisor';

describe('Supervisor', () => {
  it('starts nothing once it is stopping: a stop during start-up starts no service', async () => {
    const supervisor = new Supervisor(createLogger('supervisor-test', 'silent'));
    await supervisor.stop(1000);
    supervisor.start({ name: 'late', command: process.execPath, args: ['-e', ''], env: process.env });
    assert.equal(supervisor.pid('late'), undefined);
  });
});
