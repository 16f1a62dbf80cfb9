import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { writeFileAtomically } from '../fs/write-file-atomically';
import { WORKFLOW_BUNDLE_PATH, WORKFLOW_PRELOAD_MODULES, WORKFLOWS_PATH } from './workflow-bundle';

/** Build step: bundles the workflow code once so workers start without webpack. */
async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    preloadModules: WORKFLOW_PRELOAD_MODULES,
    logger: new DefaultLogger('WARN'),
  });
  writeFileAtomically(WORKFLOW_BUNDLE_PATH, code);
}

main().catch((err: unknown) => {
  process.stderr.write(`workflow bundle failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
