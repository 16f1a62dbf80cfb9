import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveProgram } from '../../activities/agent/resolve-program';

describe('resolveProgram', () => {
  let root: string;
  /** Creates `dir/name` with `mode`; returns its path. */
  const file = (dir: string, name: string, mode: number): string => {
    mkdirSync(join(root, dir), { recursive: true });
    const path = join(root, dir, name);
    writeFileSync(path, '#!/bin/sh\n');
    chmodSync(path, mode);
    return path;
  };
  const pathOf = (...dirs: string[]): string => dirs.map((d) => join(root, d)).join(delimiter);

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'atelier-resolve-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('takes the first PATH entry that holds an executable file, past missing ones', () => {
    mkdirSync(join(root, 'empty'));
    const first = file('first', 'agent', 0o755);
    file('second', 'agent', 0o755);
    assert.equal(resolveProgram('agent', pathOf('missing', 'empty', 'first', 'second'), root), first);
  });

  it('skips a file that may not be executed, a directory of the same name, and an entry that is a file', () => {
    file('plain', 'tool', 0o644);
    mkdirSync(join(root, 'dirs', 'tool'), { recursive: true });
    const notADirectory = file('files', 'entry', 0o755);
    const runnable = file('bin', 'tool', 0o755);
    const path = [pathOf('plain', 'dirs'), notADirectory, pathOf('bin')].join(delimiter);
    assert.equal(resolveProgram('tool', path, root), runnable);
  });

  it('answers undefined when no entry holds the program, or PATH is unset or empty', () => {
    assert.equal(resolveProgram('nowhere', pathOf('first', 'second'), root), undefined);
    assert.equal(resolveProgram('agent', undefined, root), undefined);
    assert.equal(resolveProgram('agent', `${delimiter}${delimiter}`, root), undefined);
  });

  it("resolves a relative PATH entry from the given directory, to an absolute path the task's workdir cannot change", () => {
    const tool = file('node_modules/.bin', 'tool', 0o755);
    assert.equal(resolveProgram('tool', ['missing', 'node_modules/.bin'].join(delimiter), root), tool);
  });

  it('resolves a name with a slash from the given directory, not from PATH', () => {
    const local = file('local', 'run.sh', 0o755);
    assert.equal(resolveProgram('local/run.sh', pathOf('first'), root), local);
    assert.equal(resolveProgram(local, undefined, '/'), local);
    file('local', 'data.txt', 0o644);
    assert.equal(resolveProgram('local/data.txt', undefined, root), undefined);
    assert.equal(resolveProgram('local/absent', undefined, root), undefined);
  });
});
