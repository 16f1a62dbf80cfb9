import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Where `npm run build` writes the prebuilt workflow bundle. */
export const WORKFLOW_BUNDLE_PATH = resolve(__dirname, '../../workflow-bundle.js');
export const WORKFLOWS_PATH = require.resolve('../../workflows');

/**
 * Modules evaluated once, when the worker creates its workflow sandbox, instead of once per workflow:
 * the workflows and everything they import. The SDK shares them (frozen) between the workflows of
 * the sandbox, so they must keep no state at module level: ours hold only constants, definitions and
 * activity proxies, which act on whichever workflow calls them. Less workflow-worker CPU per task.
 */
export const WORKFLOW_PRELOAD_MODULES = [WORKFLOWS_PATH];

/**
 * The prebuilt bundle when there is one (fast start, the exact code that was built), else the
 * workflow sources, which the worker bundles at start with the same preloaded modules.
 */
export function workflowCodeOption():
  { workflowBundle: { codePath: string } } | { workflowsPath: string; bundlerOptions: { preloadModules: string[] } } {
  return existsSync(WORKFLOW_BUNDLE_PATH)
    ? { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }
    : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { preloadModules: WORKFLOW_PRELOAD_MODULES } };
}
