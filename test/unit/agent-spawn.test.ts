import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_SPAWNER_BINARY, spawnerBinary } from '../../src/workers/agent-spawn';

describe('spawnerBinary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-agent-spawn-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the helper the project builds when the setting is unset, and direct when asked', () => {
    assert.equal(spawnerBinary(undefined), DEFAULT_SPAWNER_BINARY);
    assert.equal(spawnerBinary('direct'), 'direct');
    assert.equal(spawnerBinary(DEFAULT_SPAWNER_BINARY), DEFAULT_SPAWNER_BINARY);
  });

  it('stops start-up on a helper that is missing or not executable, naming the setting', () => {
    const notExecutable = join(dir, 'spawner');
    writeFileSync(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
    for (const path of [join(dir, 'missing'), notExecutable]) {
      assert.throws(() => spawnerBinary(path), /^Error: ATELIER_AGENT_SPAWNER: .* is not an executable file/);
    }
  });

  it('stops start-up on a helper that speaks another version of the protocol (built from older sources)', () => {
    const older = join(dir, 'older-spawner');
    // As a helper from before `--protocol` answers it: the argument is no parent pid.
    writeFileSync(older, '#!/bin/sh\necho "atelier-spawner: the parent pid must be a number" >&2\nexit 2\n', {
      mode: 0o755,
    });
    const other = join(dir, 'other-spawner');
    writeFileSync(other, '#!/bin/sh\necho 1\n', { mode: 0o755 });
    assert.throws(() => spawnerBinary(older), /^Error: ATELIER_AGENT_SPAWNER: .* speaks protocol none, this worker 2/);
    assert.throws(() => spawnerBinary(other), /^Error: ATELIER_AGENT_SPAWNER: .* speaks protocol 1, this worker 2/);
  });
});
