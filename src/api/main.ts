import 'reflect-metadata';
import { loadAgentsFile } from '../config/agents-file';
import { loadConfig } from '../config/env';
import { createLogger } from '../logging/logger';
import { runMain } from '../process/run-main';
import { createApp } from './create-app';

/** API process: validates config and the agents file, then serves REST on HOST:PORT. */
runMain('api', async () => {
  const config = loadConfig();
  const agents = loadAgentsFile(config.ATELIER_AGENTS_FILE);
  const logger = createLogger('api', config.LOG_LEVEL);
  const app = await createApp(config, agents, logger);
  await app.listen(config.PORT, config.HOST);
  logger.info({ url: await app.getUrl() }, 'api listening');
});
