import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentTaskOutput } from '../../workflows/definitions';
import { resultForPlan } from '../../workflows/plan-result';

describe('resultForPlan', () => {
  const paths = (n: number, prefix: string) =>
    Array.from({ length: n }, (_, i) => `${prefix}/${'d'.repeat(60)}/${i}.ts`);
  const whole: AgentTaskOutput = {
    status: 'succeeded',
    attempts: 2,
    exitCode: 0,
    outputTail: 'x'.repeat(2000),
    agent: 'claude',
    costUsd: 0.5,
    commit: {
      branch: 'atelier/t',
      baseSha: 'a'.repeat(40),
      sha: 'b'.repeat(40),
      changedFiles: paths(1000, 'src'),
      diffstat: `${paths(1000, 'src').join(' | 1 +\n')}\n 1200 files changed, 1200 insertions(+)`,
      lockViolations: paths(1000, 'lib'),
      omitted: { changedFiles: 200, lockViolations: 0 },
    },
  };

  it('keeps what a plan reads and counts what it leaves out, in a small fraction of the size', () => {
    const short = resultForPlan(whole);
    assert.deepEqual(short, {
      ...whole,
      outputTail: '',
      commit: {
        ...whole.commit,
        changedFiles: [],
        diffstat: ' 1200 files changed, 1200 insertions(+)',
        lockViolations: [],
        omitted: { changedFiles: 1200, lockViolations: 1000 },
      },
    });
    assert.ok(JSON.stringify(short).length < 500, `${JSON.stringify(short).length} characters`);
  });

  it('leaves a result without a commit without one', () => {
    const plain: AgentTaskOutput = { ...whole, commit: undefined };
    assert.deepEqual(resultForPlan(plain), { ...plain, outputTail: '' });
  });
});
