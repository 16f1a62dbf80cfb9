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
});
