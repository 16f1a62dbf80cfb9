import { runMain } from '../../src/process/run-main';
import { up } from '../../src/up/up';
import { TEMPORAL_BIN } from './test-services';

/**
 * `npm run up` with a Temporal dev server of its own, as when TEMPORAL_ADDRESS is unset, but where a
 * test puts it: on TEMPORAL_ADDRESS, with its SQLite file at ATELIER_TEST_DEV_DB_FILE and its Web UI
 * on ATELIER_TEST_DEV_UI_PORT, run by ATELIER_TEST_DEV_BINARY (a stand-in) if set, else by the Temporal CLI.
 */
runMain('up', () => {
  const { ATELIER_TEST_DEV_DB_FILE: dbFile, ATELIER_TEST_DEV_UI_PORT: uiPort } = process.env;
  if (!dbFile || !uiPort) throw new Error('set ATELIER_TEST_DEV_DB_FILE and ATELIER_TEST_DEV_UI_PORT');
  return up({ binary: process.env.ATELIER_TEST_DEV_BINARY ?? TEMPORAL_BIN, dbFile, uiPort: Number(uiPort) });
});
