import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The page's files: served as they are, nothing else from the folder. */
export const DASHBOARD_ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  // The page names its icon, so the browser does not ask for /favicon.ico, which would answer 404.
  'favicon.svg': 'image/svg+xml',
};

/** Where `npm run build` copies them (next to this file in dist/), or the sources when run unbuilt. */
export const SOURCE_ASSETS_DIR = resolve(__dirname, '../../../../src/api/dashboard/public');
export const BUILT_ASSETS_DIR = join(__dirname, 'public');

export const assetsDir = (): string =>
  existsSync(join(BUILT_ASSETS_DIR, 'index.html')) ? BUILT_ASSETS_DIR : SOURCE_ASSETS_DIR;
