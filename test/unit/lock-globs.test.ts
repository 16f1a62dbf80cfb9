import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  globsOverlap,
  lockGlobProblem,
  lockSetsOverlap,
  lockViolations,
  matchesLockGlob,
} from '../../workflows/lock-globs';

describe('lock globs', () => {
  it('sees overlap where some path matches both', () => {
    const overlapping: [string, string][] = [
      ['src/**', 'src/api/x.ts'],
      ['src/api/**', 'src/**/*.ts'],
      ['**', 'README.md'],
      ['README.md', './README.md'],
      ['src/*.ts', 'src/main.ts'],
      ['src/a*', 'src/*b'],
      ['docs/**/*.md', 'docs/api.md'],
      ['src/{a,b}.ts', 'src/a.ts'],
      ['**/test/**', 'pkg/test/unit/a.ts'],
    ];
    for (const [a, b] of overlapping) {
      assert.ok(globsOverlap(a, b), `${a} vs ${b}`);
      assert.ok(globsOverlap(b, a), `${b} vs ${a}`);
    }
  });

  it('keeps disjoint globs apart', () => {
    const disjoint: [string, string][] = [
      ['src/api/**', 'docs/**'],
      ['README.md', 'docs/README.md'],
      ['src/*.ts', 'src/main.js'],
      ['src/a*', 'src/b*'],
      ['src/*.ts', 'src/api/x.ts'],
      ['a/b', 'a/b/c'],
    ];
    for (const [a, b] of disjoint) {
      assert.ok(!globsOverlap(a, b), `${a} vs ${b}`);
      assert.ok(!globsOverlap(b, a), `${b} vs ${a}`);
    }
  });

  it('compares whole sets', () => {
    assert.ok(lockSetsOverlap(['docs/**', 'README.md'], ['src/**', 'README.md']));
    assert.ok(!lockSetsOverlap(['docs/**', 'README.md'], ['src/**', 'package.json']));
  });

  it('rejects globs that leave the repository', () => {
    assert.match(lockGlobProblem('/etc/passwd') ?? '', /relative/);
    assert.match(lockGlobProblem('../x') ?? '', /leave/);
    assert.match(lockGlobProblem('./') ?? '', /no path/);
    assert.equal(lockGlobProblem('src/**'), undefined);
  });

  it('matches changed files against globs and reports the ones no lock covers', () => {
    assert.ok(matchesLockGlob('src/api/x.ts', 'src/**'));
    assert.ok(matchesLockGlob('src/api/x.ts', 'src/**/*.ts'));
    assert.ok(matchesLockGlob('src/x.ts', 'src/**/*.ts'));
    assert.ok(matchesLockGlob('README.md', 'README.md'));
    assert.ok(matchesLockGlob('src/a.ts', 'src/{a,b}.ts'));
    assert.ok(matchesLockGlob('src/c.ts', 'src/[a-c].ts'));
    assert.ok(!matchesLockGlob('src/api/x.ts', 'src/*.ts'));
    assert.ok(!matchesLockGlob('docs/README.md', 'README.md'));
    assert.ok(!matchesLockGlob('src/d.ts', 'src/[a-c].ts'));
    assert.ok(!matchesLockGlob('srcx/a.ts', 'src/**'));
    assert.deepEqual(lockViolations(['src/a.ts', 'README.md', 'docs/x.md'], ['src/**', 'README.md']), ['docs/x.md']);
  });
});
