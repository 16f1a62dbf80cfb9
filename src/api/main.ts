import 'reflect-metadata';
import { loadAgentsFile } from '../config/agents-file';
import { loadConfig } from '../config/env';
import { createLogger } from '../logging/logger';
import { runMain } from '../process/run-main';
import { abortOnStopSignals } from '../process/stop-signals';
import { createApp } from './create-app';
import { API_STOP_DEADLINE_MS } from './stop-deadline';

/** How long the process may stay up once the app has closed, should a handle still hold it. */
const EXIT_AFTER_CLOSE_MS = 5000;

/**
 * API process: validates config and the agents file, then serves REST on HOST:PORT until SIGINT,
 * SIGTERM or SIGHUP, and then closes the app once (streams ended, hooks run, connections closed). A
 * second signal while it closes is logged, not obeyed: Ctrl-C under npm brings two.
 */
runMain('api', async () => {
  const config = loadConfig();
  const agents = loadAgentsFile(config.ATELIER_AGENTS_FILE);
  const logger = createLogger('api', config.LOG_LEVEL);
  const stop = new AbortController();
  abortOnStopSignals(stop, logger);
  const app = await createApp(config, agents, logger);
  const close = async (): Promise<void> => {
    // However long a hook or a connection takes, the process ends: it holds no work of its own.
    setTimeout(() => {
      logger.error(`the api did not stop within ${API_STOP_DEADLINE_MS / 1000} s; exiting`);
      process.exit(1);
    }, API_STOP_DEADLINE_MS).unref();
    await app.close();
    logger.info('api stopped');
    setTimeout(() => process.exit(), EXIT_AFTER_CLOSE_MS).unref();
  };
  const closeOnStop = (): void =>
    void close().catch((err: unknown) => {
      logger.error({ err }, 'api did not close cleanly');
      process.exit(1);
    });
  if (stop.signal.aborted) return closeOnStop();
  stop.signal.addEventListener('abort', closeOnStop, { once: true });
  await app.listen(config.PORT, config.HOST);
  logger.info({ url: await app.getUrl() }, 'api listening');
});
