import { Worker } from '@temporalio/worker';
import { createBookkeepingActivities } from '../../activities';
import { AttemptStore } from '../store/attempt-store';
import { runMain } from '../process/run-main';
import { runWorkerProcess } from './run-worker-process';
import { workflowCodeOption } from './workflow-bundle';

/** Workflow worker: runs task workflows and their bookkeeping activities on the workflow task queue. */
runMain('workflow-worker', () =>
  runWorkerProcess('workflow-worker', ({ config, connection, pool }) =>
    Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.ATELIER_WORKFLOW_QUEUE,
      ...workflowCodeOption(),
      activities: createBookkeepingActivities({ store: new AttemptStore(pool) }),
      shutdownGraceTime: `${config.ATELIER_SHUTDOWN_GRACE_SECONDS} seconds`,
    }),
  ),
);
