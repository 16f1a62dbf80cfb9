import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask } from '../../workflows/definitions';
import { initRepo } from '../support/git';
import { openHarness, runAgentWorker, runWorkflowWorker, type Harness } from '../support/in-process-workers';
import type { RunningWorker } from '../support/in-process-workers';
import { insertTask } from '../support/task-rows';
import { uniqueQueue } from '../support/test-env';

describe('agent slots of one agent worker', { timeout: 120_000 }, () => {
  let h: Harness;
  let dir: string;
  let repo: string;
  let marks: string;
  let queues: { workflowQueue: string; agentQueue: string };
  const workers: RunningWorker[] = [];

  before(async () => {
    h = await openHarness();
    dir = mkdtempSync(join(tmpdir(), 'atelier-agent-slots-'));
    repo = join(dir, 'repo');
    marks = join(dir, 'marks');
    initRepo(repo);
    mkdirSync(marks);
    queues = { workflowQueue: uniqueQueue('wf-slots'), agentQueue: uniqueQueue('agents-slots') };
    workers.push(
      await runWorkflowWorker(h, queues.workflowQueue),
      await runAgentWorker(h, queues.agentQueue, 'one-slot', { slots: 1, worktreeRoot: join(dir, 'worktrees') }),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A task whose agent marks its own start and end in files (their times are when it ran). */
  async function startTask(key: string, inWorktree: boolean) {
    const prompt = `@pidfile ${join(marks, `${key}.start`)}\n@sleep 1\n@pidfile ${join(marks, `${key}.end`)}`;
    const taskId = await insertTask(h.pool, { prompt });
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: queues.workflowQueue,
      workflowId: workflowIdForTask(taskId),
      args: [
        {
          taskId,
          agent: 'stand-in',
          timeoutSeconds: 60,
          maxAttempts: 1,
          priority: 3,
          agentTaskQueue: queues.agentQueue,
          // A task with a repository runs its agent on the worker's own queue, the others on the shared one.
          ...(inWorktree && { repo: { path: repo } }),
        },
      ],
    });
    return { key, handle };
  }

  it('runs one agent at a time over its shared and its own queue, and finishes the work of both', async () => {
    const keys = ['own-1', 'shared-1', 'own-2', 'shared-2', 'own-3', 'shared-3'];
    const tasks = await Promise.all(keys.map((key) => startTask(key, key.startsWith('own'))));
    // Each result is awaited: a queue starved of its slot would leave its tasks hanging past the timeout.
    for (const { key, handle } of tasks) assert.equal((await handle.result()).status, 'succeeded', key);

    const runs = keys
      .map((key) => ({
        key,
        start: statSync(join(marks, `${key}.start`)).mtimeMs,
        end: statSync(join(marks, `${key}.end`)).mtimeMs,
      }))
      .sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) {
      const [prev, run] = [runs[i - 1], runs[i]] as [(typeof runs)[number], (typeof runs)[number]];
      assert.ok(run.start >= prev.end, `${run.key} started while ${prev.key} ran: ${JSON.stringify(runs)}`);
    }
  });
});
