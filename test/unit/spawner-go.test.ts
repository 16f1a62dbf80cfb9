import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../support/test-env';

const SPAWNER_SOURCE = resolve(ROOT, 'infra/spawner');
/** Without Go, the project builds no helper and agent workers start agents themselves (infra/bootstrap.mjs). */
const goMissing = spawnSync('go', ['version'], { stdio: 'ignore' }).error !== undefined;

describe('atelier-spawner', () => {
  it('passes its own Go tests (infra/spawner/main_test.go)', { skip: goMissing && 'Go is not installed' }, () => {
    const run = spawnSync('go', ['test', './...'], { cwd: SPAWNER_SOURCE, encoding: 'utf8', timeout: 300_000 });
    assert.equal(run.status, 0, `go test failed:\n${run.stdout}${run.stderr}`);
  });
});
