import { resolve } from 'node:path';
import { runMain } from '../process/run-main';
import { up } from './up';

const ROOT = resolve(__dirname, '../../..');

/**
 * `npm run up`: the whole service on one machine (see ./up.ts). Starts its own Temporal dev server,
 * with its state in .data/ and its Web UI on port 8233, unless TEMPORAL_ADDRESS is set (not blank).
 */
runMain('up', () =>
  up(
    // Blank is unset, as config reads it: `up` then runs the server at the default address.
    !process.env.TEMPORAL_ADDRESS?.trim()
      ? {
          binary: resolve(ROOT, '.tools/bin/temporal'),
          dbFile: resolve(ROOT, '.data/temporal.sqlite'),
          uiPort: 8233,
        }
      : undefined,
  ),
);
