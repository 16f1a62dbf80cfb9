import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createBookkeepingActivities, createLockActivities, createPlanActivities } from '../../activities';
import { WebhookDispatcher } from '../notifications/webhook-dispatcher';
import { AttemptStore } from '../store/attempt-store';
import { PlanStore } from '../store/plan-store';
import { runMain } from '../process/run-main';
import { runWorkerProcess } from './run-worker-process';
import { workflowCodeOption } from './workflow-bundle';

/** Workflow tasks one workflow worker handles at once (the SDK's default, stated so it can be reported). */
const WORKFLOW_TASK_SLOTS = 40;

/** Workflow worker: runs task workflows and their bookkeeping activities on the workflow task queue. */
runMain('workflow-worker', () =>
  runWorkerProcess(
    {
      name: 'workflow-worker',
      kind: 'workflow',
      taskQueue: (config) => config.ATELIER_WORKFLOW_QUEUE,
      metricsPort: (config) => config.ATELIER_WORKFLOW_WORKER_METRICS_PORT,
      slots: () => ({ mode: 'fixed', total: WORKFLOW_TASK_SLOTS }),
      // Webhook notifications are delivered from here, when configured (config checks the secret is set).
      background: ({ config, pool, logger }) => {
        if (config.ATELIER_WEBHOOK_URLS.length === 0 || config.ATELIER_WEBHOOK_SECRET === undefined) return undefined;
        const dispatcher = new WebhookDispatcher({
          pool,
          urls: config.ATELIER_WEBHOOK_URLS,
          secret: config.ATELIER_WEBHOOK_SECRET,
          retentionMs: config.ATELIER_WEBHOOK_RETENTION_DAYS * 24 * 3600_000,
          logger: logger.child({ component: 'webhooks' }),
        });
        dispatcher.start();
        return dispatcher;
      },
    },
    ({ config, connection, pool, identity, activityInterceptors }) => {
      const attempts = new AttemptStore(pool, { notify: config.ATELIER_WEBHOOK_URLS.length > 0 });
      return Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.ATELIER_WORKFLOW_QUEUE,
        identity,
        ...workflowCodeOption(),
        activities: {
          ...createBookkeepingActivities({ store: attempts }),
          ...createPlanActivities({ plans: new PlanStore(pool), attempts }),
          ...createLockActivities({ client: new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }) }),
        },
        interceptors: { activity: [activityInterceptors] },
        maxConcurrentWorkflowTaskExecutions: WORKFLOW_TASK_SLOTS,
        shutdownGraceTime: `${config.ATELIER_SHUTDOWN_GRACE_SECONDS} seconds`,
      });
    },
  ),
);
