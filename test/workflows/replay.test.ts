import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { historyFromJSON, type History } from '@temporalio/common/lib/proto-utils';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowCodeOption } from '../../src/workers/workflow-bundle';
import { installQuietRuntime } from '../support/in-process-workers';
import { HISTORIES_DIR, HISTORY_SCENARIOS } from '../support/record-histories';

interface NamedHistory {
  workflowId: string;
  history: History;
}

/** Every committed history, named after its file (histories carry no workflow id). */
const committedHistories = (): NamedHistory[] =>
  readdirSync(HISTORIES_DIR)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => ({
      workflowId: basename(name, '.json'),
      history: historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, name), 'utf8'))),
    }));

async function replay(histories: NamedHistory[]): Promise<ReplayResult[]> {
  installQuietRuntime();
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories({ ...workflowCodeOption() }, histories)) results.push(result);
  return results;
}

/**
 * Replays the histories recorded from earlier versions of the workflow (test/histories/, written by
 * test/support/record-histories.ts) against today's workflow code: a change that would break running
 * workflows fails here. Such a change needs `patched()`, and its new histories are added beside the old.
 */
describe('workflow replay', { timeout: 60_000 }, () => {
  it('replays every committed history without a determinism error', async () => {
    const histories = committedHistories();
    const names = histories.map((h) => h.workflowId);
    for (const scenario of HISTORY_SCENARIOS) {
      assert.ok(names.includes(scenario.name), `test/histories/${scenario.name}.json is missing`);
    }
    const results = await replay(histories);
    assert.deepEqual(
      results.map((r) => r.workflowId),
      names,
      'every history was replayed',
    );
    for (const result of results) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${result.error?.message ?? ''}`);
    }
  });

  it('notices when the workflow no longer issues the commands a history recorded', async () => {
    const [success] = committedHistories().filter((h) => h.workflowId === 'success');
    assert.ok(success, 'test/histories/success.json is missing');
    const scheduled = success.history.events?.find((e) => e.activityTaskScheduledEventAttributes);
    const activityType = scheduled?.activityTaskScheduledEventAttributes?.activityType;
    assert.ok(activityType, 'the success history schedules an activity');
    // As if the workflow had once called an activity under another name.
    activityType.name = 'runAgentUnderAnOldName';

    const [result] = await replay([{ workflowId: 'tampered', history: success.history }]);
    assert.ok(
      result?.error instanceof DeterminismViolationError,
      `expected a determinism error, got ${String(result?.error)}`,
    );
  });
});
