import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../../fs/write-file-atomically';
import { BUILT_ASSETS_DIR, DASHBOARD_ASSETS, SOURCE_ASSETS_DIR } from './dashboard-assets';

/** Build step: copies the dashboard page into dist/, so a deployment of dist/ alone serves it. */
mkdirSync(BUILT_ASSETS_DIR, { recursive: true });
for (const name of Object.keys(DASHBOARD_ASSETS)) {
  writeFileAtomically(join(BUILT_ASSETS_DIR, name), readFileSync(join(SOURCE_ASSETS_DIR, name)));
}
