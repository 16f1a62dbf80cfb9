import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { workdirProblem } from '../../src/fs/is-directory';

const SETPRIV = '/usr/bin/setpriv';
/** The unprivileged user the check runs as when the tests run as root (root may enter any directory). */
const NOBODY = '65534';

/** workdirProblem(path) as a user other than root: this process's, or nobody's when this process is root. */
function problemAsUser(path: string): string | undefined {
  if (process.getuid?.() !== 0) return workdirProblem(path);
  const module = JSON.stringify(require.resolve('../../src/fs/is-directory'));
  const script = `process.stdout.write(JSON.stringify(require(${module}).workdirProblem(${JSON.stringify(path)}) ?? null))`;
  const out = execFileSync(
    SETPRIV,
    ['--reuid', NOBODY, '--regid', NOBODY, '--clear-groups', process.execPath, '-e', script],
    { encoding: 'utf8' },
  );
  return (JSON.parse(out) as string | null) ?? undefined;
}

describe('a workdir the agent worker may enter', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-workdir-'));
    chmodSync(dir, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'is one its user may list and enter: not one closed to it, nor one that is missing',
    { skip: !existsSync(SETPRIV) && 'no setpriv' },
    () => {
      const open = join(dir, 'open');
      const closed = join(dir, 'closed');
      execFileSync('mkdir', ['-m', '755', open]);
      execFileSync('mkdir', ['-m', '700', closed]);
      if (process.getuid?.() !== 0) chmodSync(closed, 0o000);
      assert.equal(problemAsUser(open), undefined);
      assert.match(problemAsUser(closed) ?? '', /^cannot be entered by the agent worker's user \(uid \d+\)$/);
      assert.equal(problemAsUser(join(dir, 'missing')), 'is not a directory');
    },
  );
});
