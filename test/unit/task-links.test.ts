import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { taskLinks } from '../../src/api/tasks/task-view';
import { loadConfig } from '../../src/config/env';

describe('a task’s Temporal Web UI link', () => {
  const task = { id: 'abc', workflow_id: 'task-abc', run_id: null };

  it('opens the history of the task’s run', () => {
    assert.equal(
      taskLinks({ ...task, run_id: 'run-1' }, 'http://127.0.0.1:8233', 'default').temporalUi,
      'http://127.0.0.1:8233/namespaces/default/workflows/task-abc/run-1/history',
    );
  });

  it('opens the workflow, whose page shows its latest run, while no run is recorded: the Web UI has no workflows/<id>/history', () => {
    assert.equal(
      taskLinks(task, 'http://127.0.0.1:8233', 'default').temporalUi,
      'http://127.0.0.1:8233/namespaces/default/workflows/task-abc',
    );
  });

  it('takes TEMPORAL_UI_URL with trailing slashes without doubling them', () => {
    const { TEMPORAL_UI_URL, TEMPORAL_NAMESPACE } = loadConfig({
      TEMPORAL_UI_URL: 'https://temporal.example.com/ui//',
    });
    assert.equal(TEMPORAL_UI_URL, 'https://temporal.example.com/ui');
    assert.equal(
      taskLinks(task, TEMPORAL_UI_URL, TEMPORAL_NAMESPACE).temporalUi,
      'https://temporal.example.com/ui/namespaces/default/workflows/task-abc',
    );
    assert.equal(loadConfig({}).TEMPORAL_UI_URL, 'http://127.0.0.1:8233');
  });
});
