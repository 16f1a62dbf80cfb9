import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp } from '../../src/api/create-app';
import { loadAgentsFile } from '../../src/config/agents-file';
import { loadConfig } from '../../src/config/env';
import { createLogger } from '../../src/logging/logger';
import { TEST_AGENTS_FILE, uniqueQueue } from './test-env';

export interface InProcessApi {
  app: NestExpressApplication;
  baseUrl: string;
}

/**
 * The API alone, in this process, on a free loopback port, with the test agents file: `env` names its
 * database, Temporal and workflow queue (and its agent queue, else a fresh one). It starts none of the rows other tests leave unstarted on
 * purpose (the test run's database is shared).
 */
export async function startInProcessApi(env: {
  DATABASE_URL: string;
  TEMPORAL_ADDRESS: string;
  ATELIER_WORKFLOW_QUEUE: string;
  ATELIER_AGENT_QUEUE?: string;
}): Promise<InProcessApi> {
  const config = loadConfig({
    ATELIER_AGENT_QUEUE: uniqueQueue('agents-api'),
    ATELIER_AGENTS_FILE: TEST_AGENTS_FILE,
    ATELIER_STRANDED_AFTER_SECONDS: '86400',
    ATELIER_CLOSED_RUN_SWEEP_SECONDS: '3600',
    ...env,
  });
  const app = await createApp(config, loadAgentsFile(TEST_AGENTS_FILE), createLogger('api', 'silent'));
  await app.listen(0, '127.0.0.1');
  return { app, baseUrl: await app.getUrl() };
}
