import { Worker } from '@temporalio/worker';
import { createAgentActivities } from '../../activities';
import { loadAgentsFile } from '../config/agents-file';
import { loadConfig } from '../config/env';
import { AdmissionStore } from '../store/admission-store';
import { AttemptStore } from '../store/attempt-store';
import { AttemptUsageStore } from '../store/attempt-usage-store';
import { runMain } from '../process/run-main';
import { agentSlots } from './agent-slots';
import { runWorkerProcess } from './run-worker-process';

/**
 * Agent worker: runs agent CLIs on the agent task queue, at most `ATELIER_AGENT_SLOTS` at once (or as
 * many as CPU and memory allow, with `auto`). It heartbeats every 2 s and flushes heartbeats at most a
 * second apart, so a cancel reaches a running agent within about 2 s.
 */
runMain('agent-worker', () => {
  // A bad agents file stops start-up before anything connects.
  const agents = loadAgentsFile(loadConfig().ATELIER_AGENTS_FILE);
  return runWorkerProcess(
    {
      name: 'agent-worker',
      kind: 'agent',
      taskQueue: (config) => config.ATELIER_AGENT_QUEUE,
      metricsPort: (config) => config.ATELIER_AGENT_WORKER_METRICS_PORT,
      slots: (config) => agentSlots(config),
    },
    ({ config, connection, pool, identity, activityInterceptors }) =>
      Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.ATELIER_AGENT_QUEUE,
        identity,
        activities: createAgentActivities({
          agents,
          store: new AttemptStore(pool),
          admission: new AdmissionStore(pool, { leaseSeconds: config.ATELIER_LEASE_SECONDS }),
          usage: new AttemptUsageStore(pool),
          workerIdentity: identity,
          env: process.env,
        }),
        interceptors: { activity: [activityInterceptors] },
        ...agentSlots(config).options,
        maxHeartbeatThrottleInterval: '1 second',
        shutdownGraceTime: `${config.ATELIER_SHUTDOWN_GRACE_SECONDS} seconds`,
      }),
  );
});
