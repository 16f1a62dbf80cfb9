import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { History } from '@temporalio/common/lib/proto-utils';
import { downloads, type Source, type Unavailable, type WorkflowLister } from '../../src/cli/commands/replay-sources';

/** A Temporal whose query matches `runs` runs of workflow `wf`; it counts the histories downloaded. */
function temporalWith(runs: number, opts: { failing?: string } = {}) {
  let downloaded = 0;
  const workflow: WorkflowLister = {
    list: async function* () {
      for (let i = 1; i <= runs; i++) yield { workflowId: 'wf', runId: `run-${i}` };
    },
    getHandle: (_workflowId, runId) => ({
      describe: async () => ({ runId: `run-${runs}` }),
      fetchHistory: async (): Promise<History> => {
        if (runId === opts.failing) throw new Error(`no run ${runId}`);
        downloaded += 1;
        return { events: [] };
      },
    }),
  };
  return { workflow, downloaded: () => downloaded };
}

const all = async (sources: AsyncGenerator<Source, void>): Promise<string[]> => {
  const names: string[] = [];
  for await (const s of sources) names.push(s.source);
  return names;
};

describe('the histories of a replay --query', () => {
  it('are downloaded one at a time, each when the one before has been taken', async () => {
    const temporal = temporalWith(3);
    const sources = downloads(temporal.workflow, [], { query: 'q', limit: 10, note: () => undefined }, []);
    const first = await sources.next();
    assert.equal(first.done, false);
    assert.equal(temporal.downloaded(), 1, 'the first history alone, before it is replayed');
    await sources.next();
    assert.equal(temporal.downloaded(), 2);
    assert.deepEqual(await all(sources), ['temporal:wf/run-3']);
  });

  it('go on past one that cannot be downloaded, and stop at the limit, saying so', async () => {
    const temporal = temporalWith(5, { failing: 'run-2' });
    const failed: Unavailable[] = [];
    const notes: string[] = [];
    const sources = downloads(temporal.workflow, ['wf'], { query: 'q', limit: 3, note: (l) => notes.push(l) }, failed);
    assert.deepEqual(await all(sources), ['temporal:wf', 'temporal:wf/run-1', 'temporal:wf/run-3']);
    assert.deepEqual(
      failed.map((f) => [f.source, f.error.message]),
      [['temporal:wf/run-2', 'cannot download the history: no run run-2']],
    );
    assert.deepEqual(notes, ['replaying the first 3 workflows the query matched (--limit)']);
  });
});
