import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeFileAtomically } from '../../src/fs/write-file-atomically';

describe('writeFileAtomically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-atomic-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the file without touching the content a reader already opened, and leaves nothing beside it', () => {
    const path = join(dir, 'bundle.js');
    writeFileSync(path, 'old content');
    const reader = openSync(path, 'r');
    try {
      writeFileAtomically(path, 'new');
      // Written in place (truncated, then written), the open file would read "new" now.
      const buf = Buffer.alloc(64);
      assert.equal(buf.subarray(0, readSync(reader, buf, 0, 64, 0)).toString(), 'old content');
    } finally {
      closeSync(reader);
    }
    assert.equal(readFileSync(path, 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir), ['bundle.js']);
  });
});
