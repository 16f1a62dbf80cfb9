import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { classifyAttemptError, isWorkerLost, neverPickedUp } from '../../workflows/attempt-failure';
import { decideAfterFailure } from '../../workflows/attempt-policy';
import type { FailureClass, FailurePolicy } from '../../workflows/definitions';

const opts = { maxAttempts: 3, backoffSeconds: 1, maxBackoffSeconds: 60, now: 1_000_000 };
const decide = (
  failureClass: FailureClass,
  counts: { attempts: number; classFailures: number },
  extra: { policy?: FailurePolicy; resetAt?: number | null; maxAttempts?: number } = {},
) =>
  decideAfterFailure({ failureClass, policy: extra.policy, resetAt: extra.resetAt }, counts, {
    ...opts,
    maxAttempts: extra.maxAttempts ?? opts.maxAttempts,
  });

describe('decideAfterFailure (the default policies)', () => {
  it('retries overloaded, crash, stalled and nonzero_exit with a doubling backoff until maxAttempts', () => {
    for (const cls of ['overloaded', 'crash', 'stalled', 'nonzero_exit'] as const) {
      assert.deepEqual(decide(cls, { attempts: 1, classFailures: 1 }), {
        action: 'retry',
        delayMs: 1000,
        reason: 'retrying after a backoff',
      });
      assert.equal((decide(cls, { attempts: 2, classFailures: 2 }) as { delayMs: number }).delayMs, 2000);
      assert.equal(decide(cls, { attempts: 3, classFailures: 3 }).action, 'next', cls);
    }
  });

  it('keeps a first delay longer than the 60 s cap, and doubles none past it', () => {
    const policy: FailurePolicy = { action: 'retry', backoffSeconds: 300 };
    for (const attempts of [1, 2]) {
      const decided = decide('overloaded', { attempts, classFailures: attempts }, { policy, maxAttempts: 5 });
      assert.equal((decided as { delayMs: number }).delayMs, 300_000);
    }
  });

  it('retries a timeout once, then moves on', () => {
    assert.equal(decide('timeout', { attempts: 1, classFailures: 1 }).action, 'retry');
    assert.equal(decide('timeout', { attempts: 2, classFailures: 2 }).action, 'next');
  });

  it('moves to the next agent at once on auth, context overflow and bad output', () => {
    for (const cls of ['auth', 'context_overflow', 'bad_output', 'agent_not_found'] as const) {
      assert.equal(decide(cls, { attempts: 1, classFailures: 1 }).action, 'next', cls);
    }
  });

  it('fails the task on max_turns and invalid input', () => {
    assert.equal(decide('max_turns', { attempts: 1, classFailures: 1 }).action, 'fail');
    assert.equal(decide('invalid_input', { attempts: 1, classFailures: 1 }).action, 'fail');
  });

  it('waits for a rate limit to reset when it is close, and moves on when it is far', () => {
    const soon = decide('rate_limited', { attempts: 1, classFailures: 1 }, { resetAt: opts.now + 90_000 });
    assert.deepEqual(soon, { action: 'retry', delayMs: 90_000, reason: 'waiting for the limit to reset' });
    const far = decide('rate_limited', { attempts: 1, classFailures: 1 }, { resetAt: opts.now + 3_600_000 });
    assert.equal(far.action, 'next');
    // Without a reset time: a backoff, once.
    assert.equal(decide('rate_limited', { attempts: 1, classFailures: 1 }).action, 'retry');
    assert.equal(decide('rate_limited', { attempts: 2, classFailures: 2 }).action, 'next');
  });
});

describe("decideAfterFailure (a profile's policies)", () => {
  it('follows the policy the attempt carried', () => {
    const policy: FailurePolicy = { action: 'retry', retries: 3, backoffSeconds: 5 };
    assert.deepEqual(decide('auth', { attempts: 1, classFailures: 1 }, { policy, maxAttempts: 10 }), {
      action: 'retry',
      delayMs: 5000,
      reason: 'retrying after a backoff',
    });
    assert.equal(decide('auth', { attempts: 4, classFailures: 4 }, { policy, maxAttempts: 10 }).action, 'next');
    assert.equal(
      decide('overloaded', { attempts: 1, classFailures: 1 }, { policy: { action: 'fail' } }).action,
      'fail',
    );
  });

  it('can ignore reset times, or wait longer for them', () => {
    const resetAt = opts.now + 600_000;
    assert.equal(
      (
        decide(
          'rate_limited',
          { attempts: 1, classFailures: 1 },
          { resetAt, policy: { action: 'retry', waitForReset: false } },
        ) as {
          delayMs: number;
        }
      ).delayMs,
      1000,
    );
    assert.deepEqual(
      decide(
        'rate_limited',
        { attempts: 1, classFailures: 1 },
        { resetAt, policy: { action: 'retry', maxResetWaitSeconds: 900 } },
      ),
      { action: 'retry', delayMs: 600_000, reason: 'waiting for the limit to reset' },
    );
  });
});

describe('classifyAttemptError', () => {
  /** A runAgent failure as the workflow receives it, caused by `cause`. */
  const activityFailure = (cause: Error): ActivityFailure =>
    new ActivityFailure('activity failed', 'runAgent', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);

  it('takes the class the agent worker typed its failure with', () => {
    const failure = ApplicationFailure.create({ message: 'limit reached', type: 'rate_limited' });
    assert.deepEqual(classifyAttemptError(activityFailure(failure)), {
      failureClass: 'rate_limited',
      message: 'limit reached',
      policy: undefined,
      resetAt: null,
    });
  });

  it('takes an error the worker threw without a class (typed with its name) for a crash, which is retried', () => {
    // How the SDK sends a plain error thrown by an activity: an ApplicationFailure typed with its name.
    const failure = ApplicationFailure.create({ message: 'terminating connection', type: 'DatabaseError' });
    const classified = classifyAttemptError(activityFailure(failure));
    assert.deepEqual(classified, { failureClass: 'crash', message: 'DatabaseError: terminating connection' });
    assert.equal(decide(classified.failureClass, { attempts: 1, classFailures: 1 }).action, 'retry');
  });

  it('decides for a class it does not know as for a crash, rather than fail the workflow task', () => {
    assert.deepEqual(
      decide('Error' as FailureClass, { attempts: 1, classFailures: 1 }),
      decide('crash', { attempts: 1, classFailures: 1 }),
    );
  });
});

describe('a worktree worker gone (isWorkerLost, neverPickedUp)', () => {
  const timedOut = (type: TimeoutType): ActivityFailure =>
    new ActivityFailure(
      'activity timed out',
      'runAgent',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      'worker',
      new TimeoutFailure('timed out', undefined, type),
    );

  it('asks again only an attempt no worker took: one that stopped heartbeating ran its agent', () => {
    // withWorktree asks a never-taken attempt again where the worktree moves; a lost one is an attempt.
    assert.equal(neverPickedUp(timedOut(TimeoutType.SCHEDULE_TO_START)), true);
    assert.equal(neverPickedUp(timedOut(TimeoutType.HEARTBEAT)), false);
    assert.equal(isWorkerLost(timedOut(TimeoutType.SCHEDULE_TO_START)), true);
    assert.equal(isWorkerLost(timedOut(TimeoutType.HEARTBEAT)), true);
    assert.equal(classifyAttemptError(timedOut(TimeoutType.HEARTBEAT)).failureClass, 'crash');
  });

  it('takes the hard time limit and the agent’s own failures for no gone worker', () => {
    const failed = new ActivityFailure(
      'activity failed',
      'runAgent',
      '1',
      RetryState.NON_RETRYABLE_FAILURE,
      'worker',
      ApplicationFailure.create({ message: 'exit 1', type: 'nonzero_exit' }),
    );
    for (const err of [timedOut(TimeoutType.START_TO_CLOSE), failed, new Error('SCHEDULE_TO_START')]) {
      assert.equal(neverPickedUp(err), false, String(err));
      assert.equal(isWorkerLost(err), false, String(err));
    }
  });
});
