import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { WORKFLOW_BUNDLE_PATH, workflowCodeOption } from '../../src/workers/workflow-bundle';

describe('the workflow bundle', () => {
  it('is the prebuilt one, and loads the workflows once per sandbox rather than once per workflow', () => {
    assert.deepEqual(workflowCodeOption(), { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } });
    const code = readFileSync(WORKFLOW_BUNDLE_PATH, 'utf8');
    const preload = /exports\.preloadModules = function preloadModules\(\) \{([^}]*)\}/.exec(code);
    assert.ok(preload, 'the bundle has no preloadModules entry');
    assert.match(preload[1] as string, /__webpack_require__\([^)]*"\.\/dist\/workflows\/index\.js"\)/);
  });
});
