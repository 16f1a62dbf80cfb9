#!/usr/bin/env node
// Entry point of `npm run up`, `npm test` and `npm run bench` on a fresh machine: installs what is
// missing (npm dependencies, the Temporal CLI), builds, then runs the command, passing on the stop
// signals that could not have reached it (infra/forward-signals.mjs).
// Plain Node with built-ins only: it runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { npmParent, runForwardingSignals } from './forward-signals.mjs';

/** Taken before the install and the build, which take minutes: npm may be killed meanwhile. */
const npm = npmParent();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
const commands = {
  up: 'dist/src/up/main.js',
  test: 'dist/test/run-tests.js',
  bench: 'dist/test/bench/main.js',
  chaos: 'dist/test/chaos/main.js',
};

const say = (line) => process.stderr.write(`[atelier] ${line}\n`);
function run(command, args, env = process.env) {
  const res = spawnSync(command, args, { cwd: root, stdio: 'inherit', env });
  if (res.error) throw new Error(`${command}: ${res.error.message}`);
  if (res.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${res.status ?? res.signal}`);
}

function ensureDependencies() {
  const marker = join(root, 'node_modules/.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  // `npm install`, not `npm ci`: it installs the lockfile's versions too, and unlike `npm ci` it
  // accepts a lockfile written with omit-lockfile-registry-resolved, which leaves out other platforms'
  // optional packages.
  say('installing npm dependencies (npm install)');
  run('npm', ['install', '--no-audit', '--no-fund']);
}

function ensureTemporalCli() {
  // An external server; blank is unset, as the config reads it.
  if (process.env.TEMPORAL_ADDRESS?.trim() && process.argv[2] === 'up') return;
  // A CLI built from another module version (or before versions were noted) is built again: a source
  // build reports no version of its own. Without Go, the CLI there is kept.
  const stamp = join(root, '.tools/bin/temporal.module');
  const built = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : undefined;
  const binary = existsSync(join(root, '.tools/bin/temporal'));
  if (binary && built === TEMPORAL_CLI_MODULE) return;
  const noGo = spawnSync('go', ['version'], { stdio: 'ignore' }).error?.code === 'ENOENT';
  if (binary && noGo) {
    say(`Go is not installed: keeping the Temporal CLI built before, although it may not be ${TEMPORAL_CLI_MODULE}`);
    return;
  }
  if (noGo) {
    throw new Error(
      'Go is not installed: install Go >= 1.25 to build the Temporal CLI' +
        (process.argv[2] === 'up' ? ', or set TEMPORAL_ADDRESS to a Temporal server of yours' : ''),
    );
  }
  say(`installing the Temporal CLI from Go modules (${TEMPORAL_CLI_MODULE}); the first build takes minutes`);
  run('go', ['install', TEMPORAL_CLI_MODULE], { ...process.env, GOBIN: join(root, '.tools/bin') });
  writeFileSync(stamp, `${TEMPORAL_CLI_MODULE}\n`);
}

/**
 * The agent workers start agents through a small Go helper (infra/spawner), built here when its
 * sources are newer than the binary. Without Go (`npm run up` against an external Temporal server)
 * the workers start agents themselves.
 */
const SPAWNER_SOURCE = join(root, 'infra/spawner');
const SPAWNER_BINARY = join(root, '.tools/bin/atelier-spawner');
function ensureSpawner() {
  const newest = Math.max(...readdirSync(SPAWNER_SOURCE).map((f) => statSync(join(SPAWNER_SOURCE, f)).mtimeMs));
  if (existsSync(SPAWNER_BINARY) && statSync(SPAWNER_BINARY).mtimeMs >= newest) return;
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).error) {
    say(
      existsSync(SPAWNER_BINARY)
        ? 'Go is not installed: keeping the atelier-spawner built before, although its sources changed since'
        : 'Go is not installed: agent workers will start agents themselves (no atelier-spawner)',
    );
    return;
  }
  say('building the agent spawner (npm run build:spawner)');
  run('npm', ['run', '--silent', 'build:spawner']);
  // Go leaves a binary its sources did not change (a test file did) as it was, its time too.
  const now = new Date();
  utimesSync(SPAWNER_BINARY, now, now);
}

/**
 * The dashboard test drives Debian's Chromium (test/e2e/dashboard.e2e.test.ts). Installed here when
 * missing; if that fails the run goes on, and that test fails with the reason instead of skipping.
 */
const CHROMIUM = '/usr/bin/chromium';
function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  say('installing Chromium for the dashboard test (apt-get install -y chromium)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args) =>
    process.getuid?.() === 0 ? run('apt-get', args, env) : run('sudo', ['-n', 'apt-get', ...args], env);
  try {
    apt('update');
    apt('install', '-y', 'chromium');
  } catch (err) {
    say(`could not install Chromium (${err.message}): the dashboard test will fail`);
  }
}

/** Whether something accepts connections on 127.0.0.1:`port` (within a second). */
const answers = (port) =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 1000 });
    const done = (yes) => {
      socket.destroy();
      resolve(yes);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });

/**
 * `up` stops at once, before it installs or builds anything, when its API port, or (running its own
 * Temporal dev server) the dev server's ports on this host, already answer: another `npm run up` is
 * likely running there, and a build would rewrite the code its services restart from. `up` itself
 * checks every port again, on its host, with the message naming the setting.
 */
async function refuseRunningService() {
  const host = process.env.HOST?.trim() || '127.0.0.1';
  const local = ['127.0.0.1', 'localhost', '0.0.0.0', '::', '::1'].includes(host);
  const ports = local ? [Number(process.env.PORT?.trim() || 3000)] : [];
  if (!process.env.TEMPORAL_ADDRESS?.trim()) ports.push(7233, 8233);
  for (const port of ports) {
    if (Number.isInteger(port) && (await answers(port))) {
      throw new Error(
        `port ${port} on 127.0.0.1 is in use (another npm run up?): stop what holds it, or set ${port === 7233 || port === 8233 ? 'TEMPORAL_ADDRESS to use that server' : 'PORT'}; nothing was built`,
      );
    }
  }
}

const mode = process.argv[2];
if (!(mode in commands)) {
  say(`usage: bootstrap.mjs ${Object.keys(commands).join('|')} [args]`);
  process.exit(2);
}
try {
  if (mode === 'up') await refuseRunningService();
  ensureDependencies();
  ensureTemporalCli();
  ensureSpawner();
  if (mode === 'test') ensureChromium();
  run('npm', ['run', '--silent', 'build']);
} catch (err) {
  say(err.message);
  process.exit(1);
}
runForwardingSignals(join(root, commands[mode]), process.argv.slice(3), root, npm);
