import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startTestServices } from './support/test-services';

const ROOT = resolve(__dirname, '../..');

/**
 * The compiled test files (under dist/test) of the *.test.ts files under `dir` of test/: one whose source
 * is gone (deleted or renamed since the last build, which leaves its output behind) is not run.
 */
const findTests = (dir: string): string[] =>
  readdirSync(join(ROOT, 'test', dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, 'test', path)).isDirectory()) return findTests(path);
    return name.endsWith('.test.ts') ? [join(ROOT, 'dist/test', path.replace(/\.ts$/, '.js'))] : [];
  });

/**
 * `npm test`: one Temporal dev server (fresh SQLite file) and one fresh PostgreSQL database for the
 * run, then Node's test runner over every compiled *.test.js (or those whose path contains an argument).
 */
async function main(): Promise<number> {
  const services = await startTestServices(`atelier_test_${process.pid}`);
  try {
    const selected = process.argv.slice(2);
    const files = findTests('').filter((f) => selected.length === 0 || selected.some((s) => f.includes(s)));
    // Given no files, Node's runner would look for tests itself, and take every script under test/.
    if (files.length === 0) {
      process.stderr.write(`no test file's path contains ${selected.map((s) => `"${s}"`).join(' or ')}\n`);
      return 1;
    }
    const runner = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
      cwd: ROOT,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: services.temporalAddress,
        DATABASE_URL: services.databaseUrl,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      },
      stdio: 'inherit',
    });
    return await new Promise<number>((r) => runner.on('exit', (c) => r(c ?? 1)));
  } finally {
    await services.stop();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`test run failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
