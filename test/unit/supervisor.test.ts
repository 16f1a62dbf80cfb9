import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAgentsFile } from '../../src/config/agents-file';
import { createLogger } from '../../src/logging/logger';
import { serviceStopGraceMs } from '../../src/up/stop-grace';
import { QUICK_EXITS_TO_GIVE_UP, Supervisor } from '../../src/up/supervisor';
import { waitFor } from '../support/wait-for';

const logger = createLogger('supervisor-test', 'silent');

describe('Supervisor', () => {
  it('starts nothing once it is stopping: a stop during start-up starts no service', async () => {
    const supervisor = new Supervisor(logger, () => assert.fail('nothing to give up on'));
    await supervisor.stop(1000);
    supervisor.start({ name: 'late', command: process.execPath, args: ['-e', ''], env: process.env });
    assert.equal(supervisor.pid('late'), undefined);
  });

  it('gives up on a service that keeps exiting soon after its start, and says which and why', async () => {
    const reasons: Error[] = [];
    const starts: number[] = [];
    const supervisor = new Supervisor(logger, (err) => reasons.push(err));
    const spec = { name: 'broken', command: process.execPath, args: ['-e', 'process.exit(3)'], env: process.env };
    const start = supervisor.start.bind(supervisor);
    supervisor.start = (s, delay, exits) => (starts.push(Date.now()), start(s, delay, exits));

    // A short first delay keeps the backoff (which doubles each time) to a fraction of a second.
    supervisor.start(spec, 5);
    const [reason] = await waitFor('the supervisor to give up', () => reasons.length > 0 && reasons, {
      timeoutMs: 20_000,
    });

    assert.equal(starts.length, QUICK_EXITS_TO_GIVE_UP, 'started once, then again after each exit but the last');
    assert.match(
      reason?.message ?? '',
      /^broken ended 5 times in a row, each within 30 s of its start \(last: exited \(3\)\)/,
    );
    assert.equal(supervisor.pid('broken'), undefined, 'not running, and no restart is pending');
    await supervisor.stop(1000);
    assert.equal(starts.length, QUICK_EXITS_TO_GIVE_UP);
  });

  it('backs off from a service it cannot start at all, as from one that exits, instead of crashing', async () => {
    const reasons: Error[] = [];
    let starts = 0;
    const supervisor = new Supervisor(logger, (err) => reasons.push(err));
    // An environment value with a NUL byte: spawn throws, as it does when the machine is out of memory.
    const spec = { name: 'unstartable', command: process.execPath, args: ['-e', ''], env: { BAD: 'a\0b' } };
    const start = supervisor.start.bind(supervisor);
    supervisor.start = (s, delay, exits) => (starts++, start(s, delay, exits));

    supervisor.start(spec, 5);
    const [reason] = await waitFor('the supervisor to give up', () => reasons.length > 0 && reasons, {
      timeoutMs: 20_000,
    });
    assert.equal(starts, QUICK_EXITS_TO_GIVE_UP);
    assert.match(reason?.message ?? '', /^unstartable ended 5 times in a row, .*\(last: could not be started: /);
    assert.equal(supervisor.pid('unstartable'), undefined);
    await supervisor.stop(1000);
  });
});

describe('serviceStopGraceMs', () => {
  const agents = (killGrace: Record<string, number | undefined>) =>
    parseAgentsFile(
      JSON.stringify({
        defaultAgent: Object.keys(killGrace)[0],
        agents: Object.fromEntries(
          Object.entries(killGrace).map(([name, seconds]) => [
            name,
            { command: ['agent'], prompt: 'stdin', ...(seconds === undefined ? {} : { killGraceSeconds: seconds }) },
          ]),
        ),
      }),
      'agents.yaml',
    );

  it("leaves room for the drain, then the longest agent's kill grace, then a margin", () => {
    assert.equal(serviceStopGraceMs(30, agents({ quick: 1, slow: 45, usual: undefined })), (30 + 45 + 70) * 1000);
  });

  it('counts the default kill grace (5 s) of a profile that sets none', () => {
    assert.equal(serviceStopGraceMs(2, agents({ usual: undefined })), (2 + 5 + 70) * 1000);
  });
});
