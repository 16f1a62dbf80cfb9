import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lockViolationPolicy } from '../../src/api/locks/lock-input';
import { parseAgentsFile } from '../../src/config/agents-file';

describe('failOnLockViolations: the task’s choice, else its agent profile’s', () => {
  const agents = parseAgentsFile(
    [
      'defaultAgent: strict',
      'agents:',
      '  strict: { command: [stand-in], failOnLockViolations: true }',
      '  lenient: { command: [stand-in] }',
    ].join('\n'),
    'test agents',
  );
  const strict = agents.agents.strict;
  const lenient = agents.agents.lenient;
  const withLocks = { repo: { path: '/srv/app' }, locks: ['src/**'] };

  it('takes the profile’s default when the task says nothing, and the task’s own word over it', () => {
    assert.ok(strict && lenient);
    assert.deepEqual(lockViolationPolicy(withLocks, strict, 'f'), { value: true, problems: [] });
    assert.deepEqual(lockViolationPolicy(withLocks, lenient, 'f'), { value: false, problems: [] });
    assert.deepEqual(lockViolationPolicy({ ...withLocks, failOnLockViolations: false }, strict, 'f'), {
      value: false,
      problems: [],
    });
    assert.deepEqual(lockViolationPolicy({ ...withLocks, failOnLockViolations: true }, lenient, 'f'), {
      value: true,
      problems: [],
    });
  });

  it('refuses a task that asks for it with nothing to judge by, naming the field', () => {
    assert.ok(lenient);
    const noLocks = lockViolationPolicy(
      { repo: { path: '/srv/app' }, failOnLockViolations: true },
      lenient,
      'tasks.2.failOnLockViolations',
    );
    assert.equal(noLocks.value, false);
    assert.deepEqual(noLocks.problems, [
      { field: 'tasks.2.failOnLockViolations', problems: ['failOnLockViolations needs a repo and locks'] },
    ]);
    assert.equal(lockViolationPolicy({ locks: ['a'], failOnLockViolations: true }, lenient, 'f').problems.length, 1);
  });
});
