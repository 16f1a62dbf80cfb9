import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Where `npm run build` writes the prebuilt workflow bundle. */
export const WORKFLOW_BUNDLE_PATH = resolve(__dirname, '../../workflow-bundle.js');
export const WORKFLOWS_PATH = require.resolve('../../workflows');

/**
 * The prebuilt bundle when there is one (fast start, the exact code that was built), else the
 * workflow sources, which the worker bundles at start.
 */
export function workflowCodeOption(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  return existsSync(WORKFLOW_BUNDLE_PATH)
    ? { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }
    : { workflowsPath: WORKFLOWS_PATH };
}
