import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUILT_ASSETS_DIR, DASHBOARD_ASSETS, SOURCE_ASSETS_DIR } from './dashboard-assets';

/** Build step: copies the dashboard page into dist/, so a deployment of dist/ alone serves it. */
mkdirSync(BUILT_ASSETS_DIR, { recursive: true });
for (const name of Object.keys(DASHBOARD_ASSETS)) {
  copyFileSync(join(SOURCE_ASSETS_DIR, name), join(BUILT_ASSETS_DIR, name));
}
