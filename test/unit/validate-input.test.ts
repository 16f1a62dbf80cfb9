import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS, type AgentTaskInput } from '../../workflows/definitions';
import { findInputProblems } from '../../workflows/validate-input';

describe('findInputProblems', () => {
  const input = (taskId: unknown): AgentTaskInput =>
    ({
      taskId,
      agent: 'claude',
      timeoutSeconds: LIMITS.timeoutSeconds.min,
      maxAttempts: LIMITS.maxAttempts.min,
      priority: LIMITS.priority.min,
      agentTaskQueue: 'agents',
    }) as AgentTaskInput;

  it('takes a task id that is a UUID', () => {
    assert.deepEqual(findInputProblems(input('0b6f3c1e-8a2d-4c5b-9e7f-1a2b3c4d5e6f')), []);
    assert.deepEqual(findInputProblems(input('0B6F3C1E-8A2D-4C5B-9E7F-1A2B3C4D5E6F')), []);
  });

  it('refuses a task id that is not a UUID: its worktree is a directory named after it', () => {
    for (const taskId of ['../../x', '..', '', 'task-1', '0b6f3c1e-8a2d-4c5b-9e7f-1a2b3c4d5e6f/..', 42, undefined]) {
      assert.deepEqual(findInputProblems(input(taskId)), ['taskId must be a UUID'], String(taskId));
    }
  });
});
