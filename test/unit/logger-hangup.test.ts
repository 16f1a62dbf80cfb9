import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processAlive, waitFor } from '../support/wait-for';

const LOGGER = join(__dirname, '../../src/logging/logger.js');

/**
 * A process that logs with createLogger on a terminal, and on SIGHUP logs for half a second more (as a
 * worker logs while it drains), then marks that it finished and exits.
 */
const CHILD = `
const { writeFileSync } = require('node:fs');
const { createLogger } = require(${JSON.stringify(LOGGER)});
const [mark] = process.argv.slice(2);
const log = createLogger('hangup-test', 'info');
writeFileSync(mark + '.pid', String(process.pid));
process.on('SIGHUP', () => {
  const until = Date.now() + 500;
  setInterval(() => {
    log.info('draining');
    if (Date.now() < until) return;
    writeFileSync(mark, 'finished');
    process.exit(0);
  }, 10);
});
log.info('ready');
setInterval(() => {}, 60_000);
`;

describe('a logging process whose terminal closes', { timeout: 60_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-hangup-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps stopping after its writes fail (EIO), and exits', async () => {
    const child = join(dir, 'child.js');
    const mark = join(dir, 'finished');
    writeFileSync(child, CHILD);
    // script(1) runs the process on a terminal of its own; killing script closes that terminal, which
    // hangs the process up (SIGHUP) and fails its writes from then on.
    const terminal = spawn('script', ['-qfec', `exec ${process.execPath} ${child} ${mark}`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let output = '';
    terminal.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor('the process to log on its terminal', () => output.includes('"msg":"ready"'));
    const pid = Number(readFileSync(`${mark}.pid`, 'utf8'));
    terminal.kill('SIGKILL');
    try {
      await waitFor('the process to finish its stop and exit', () => existsSync(mark) && !processAlive(pid), {
        timeoutMs: 15_000,
      });
    } finally {
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    assert.equal(readFileSync(mark, 'utf8'), 'finished');
  });
});
