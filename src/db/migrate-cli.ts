import { describeDatabase, loadConfig } from '../config/env';
import { createLogger } from '../logging/logger';
import { runMain } from '../process/run-main';
import { ensureDatabase, migrate } from './migrate';

/**
 * `npm run migrate` (and the one-shot `migrate` service of docker-compose.yml): creates the database
 * named in DATABASE_URL when it is missing, then applies the pending migrations. Safe to run from many
 * places at once (migrate() holds an advisory lock) and to run again (applied versions are skipped).
 */
runMain('migrate', async () => {
  const config = loadConfig();
  const logger = createLogger('migrate', config.LOG_LEVEL);
  const database = describeDatabase(config.DATABASE_URL);
  await ensureDatabase(config.DATABASE_URL);
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length > 0) logger.info({ database, applied }, `applied ${applied.length} migration(s)`);
  else logger.info({ database, applied }, 'database schema is up to date');
});
