import { hostname } from 'node:os';
import { Worker } from '@temporalio/worker';
import { createAgentActivities } from '../../activities';
import { loadAgentsFile } from '../config/agents-file';
import { loadConfig } from '../config/env';
import { AttemptStore } from '../store/attempt-store';
import { runMain } from '../process/run-main';
import { runWorkerProcess } from './run-worker-process';

/**
 * Agent worker: runs agent CLIs on the agent task queue, at most `ATELIER_AGENT_SLOTS` at once.
 * It heartbeats every 2 s and flushes heartbeats at most a second apart, so a cancel reaches a running
 * agent within about 2 s.
 */
runMain('agent-worker', () => {
  // A bad agents file stops start-up before anything connects.
  const agents = loadAgentsFile(loadConfig().ATELIER_AGENTS_FILE);
  return runWorkerProcess('agent-worker', ({ config, connection, pool }) => {
    const identity = `agent-worker:${process.pid}@${hostname()}`;
    return Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.ATELIER_AGENT_QUEUE,
      identity,
      activities: createAgentActivities({
        agents,
        store: new AttemptStore(pool),
        workerIdentity: identity,
        env: process.env,
      }),
      maxConcurrentActivityTaskExecutions: config.ATELIER_AGENT_SLOTS,
      maxHeartbeatThrottleInterval: '1 second',
      shutdownGraceTime: `${config.ATELIER_SHUTDOWN_GRACE_SECONDS} seconds`,
    });
  });
});
