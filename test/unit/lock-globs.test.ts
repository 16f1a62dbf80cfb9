import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  globsOverlap,
  lockGlobProblem,
  lockSetOverlapCheck,
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

  it('answers long runs of ** on both sides without trying every way to split them', () => {
    // Unremembered, each ** doubles the work: these would not finish (and the lock manager's workflow
    // task would pass its deadlock timeout, freezing every lock of the repository).
    const runs = '**/'.repeat(40);
    assert.equal(globsOverlap(`${runs}a`, `${runs}b`), false);
    assert.equal(globsOverlap(`${runs}x/a`, `${runs}a`), true);
    assert.equal(lockSetOverlapCheck()([`${runs}a`, `${runs}c`], [`${runs}b`]), false);
  });

  it('finds exactly the overlaps the plain recursion found (replayed grants depend on them)', () => {
    // The recursion as it was before its answers were remembered; one segment's overlap is globsOverlap's.
    const plain = (a: string[], i: number, b: string[], j: number): boolean => {
      if (i === a.length && j === b.length) return true;
      if (i < a.length && a[i] === '**') return plain(a, i + 1, b, j) || (j < b.length && plain(a, i, b, j + 1));
      if (j < b.length && b[j] === '**') return plain(a, i, b, j + 1) || (i < a.length && plain(a, i + 1, b, j));
      if (i === a.length || j === b.length) return false;
      return globsOverlap(a[i] as string, b[j] as string) && plain(a, i + 1, b, j + 1);
    };
    const segments = ['**', 'a', '*', 'b*', '{a,b}'];
    let globs: string[][] = [[]];
    for (let length = 1; length <= 3; length++) {
      globs = [
        ...globs,
        ...globs.filter((g) => g.length === length - 1).flatMap((g) => segments.map((s) => [...g, s])),
      ];
    }
    // A kept check answers the same from the globs it has read already.
    const kept = lockSetOverlapCheck();
    for (const a of globs) {
      for (const b of globs) {
        const expected = plain(a, 0, b, 0);
        assert.equal(globsOverlap(a.join('/'), b.join('/')), expected, `${a} vs ${b}`);
        assert.equal(kept([a.join('/')], [b.join('/')]), expected, `kept: ${a} vs ${b}`);
      }
    }
  });

  it('compares whole sets', () => {
    const overlaps = lockSetOverlapCheck();
    assert.ok(overlaps(['docs/**', 'README.md'], ['src/**', 'README.md']));
    assert.ok(!overlaps(['docs/**', 'README.md'], ['src/**', 'package.json']));
  });

  it('rejects globs that leave the repository', () => {
    assert.match(lockGlobProblem('/etc/passwd') ?? '', /relative/);
    assert.match(lockGlobProblem('../x') ?? '', /leave/);
    assert.match(lockGlobProblem('./') ?? '', /no path/);
    assert.equal(lockGlobProblem('src/**'), undefined);
    // The lock manager's comparisons grow with the product of two globs' segment counts.
    assert.equal(lockGlobProblem(Array(32).fill('**').join('/')), undefined);
    assert.match(lockGlobProblem(Array(33).fill('**').join('/')) ?? '', /more than 32 path segments/);
  });

  it('rejects globs the matcher cannot read, naming the problem', () => {
    const unreadable: [string, string][] = [
      ['src/{a,b', 'has a "{" not closed within its path segment'],
      // Split at its '/', this would be three segments of literal text.
      ['{src/a.ts,lib/b.ts}', 'has a "{" not closed within its path segment'],
      ['src/[ab/x', 'has a "[" not closed within its path segment'],
      ['src/{a,{b,c}}.ts', 'has braces within braces'],
      ['src/[].ts', 'has an empty class "[]"'],
      ['src/[!].ts', 'has an empty class "[!]"'],
      ['src/[a-cz-a].ts', 'has a range out of order ("z-a")'],
    ];
    for (const [glob, problem] of unreadable) assert.equal(lockGlobProblem(glob), `lock "${glob}" ${problem}`);
    for (const glob of ['src/{*.ts,*.tsx}', 'src/{,a}[-a-c_].ts', '**/[!.]*', 'a]b}c,d', 'src/{[}],x}']) {
      assert.equal(lockGlobProblem(glob), undefined, glob);
    }
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

  it('reads wildcards and classes within brace alternatives, which stay within one segment', () => {
    assert.ok(matchesLockGlob('src/a.ts', 'src/{*.ts,*.tsx}'));
    assert.ok(matchesLockGlob('src/a.tsx', 'src/{*.ts,*.tsx}'));
    assert.ok(!matchesLockGlob('src/a.js', 'src/{*.ts,*.tsx}'));
    assert.ok(!matchesLockGlob('src/x/a.ts', 'src/{*.ts,*.tsx}'));
    assert.ok(matchesLockGlob('src/b7.ts', 'src/{a?,b[0-9]}.ts'));
    assert.ok(matchesLockGlob('src/x', 'src/{**,y}'));
    assert.ok(!matchesLockGlob('src/x/y', 'src/{**,y}'));
    assert.deepEqual(lockViolations(['src/a.ts', 'src/a.js'], ['src/{*.ts,*.tsx}']), ['src/a.js']);
  });

  it('reads classes itself: ranges, negation within one segment, and unreadable ones without throwing', () => {
    assert.ok(!matchesLockGlob('src/m.ts', 'src/[z-a].ts'));
    assert.ok(matchesLockGlob('a-b', 'a[x-]b'));
    assert.ok(matchesLockGlob('axb', 'a[!b]b'));
    assert.ok(!matchesLockGlob('abb', 'a[!b]b'));
    assert.ok(!matchesLockGlob('a/b', 'a[!b]b'));
    assert.ok(!matchesLockGlob('a/b', 'a[^b]b'));
    assert.ok(matchesLockGlob('src/a[b', 'src/a[b'));
    assert.ok(matchesLockGlob('src/a{b', 'src/a{b'));
    assert.ok(matchesLockGlob('src/😀.md', 'src/?.md'));
  });

  it('matches patterns that make a backtracking regular expression take exponential time', () => {
    assert.equal(matchesLockGlob('a'.repeat(60), `${'a*'.repeat(30)}b`), false);
    assert.equal(matchesLockGlob('a'.repeat(60), `${'a*'.repeat(30)}`), true);
    assert.equal(matchesLockGlob(`${'a/'.repeat(60)}c`, `${'**/'.repeat(40)}b`), false);
    assert.equal(matchesLockGlob(`${'a/'.repeat(60)}b`, `${'**/'.repeat(40)}b`), true);
  });

  it('never says a glob covers a path that the overlap check holds it cannot match', () => {
    const globs = ['src/{*.ts,x}', 'a[!b]b', '{a,b}*c', '*[z-a]', 'a[b', 'x{**}y', '[]]', '{a,{b,c}}d', '**/?'];
    // Paths without `*`, `?`, `[` or `{`: the overlap check would read those as wildcards, and hold less.
    const paths = ['src/a.ts', 'src/x', 'axb', 'a/b', 'bzc', 'a]b', 'xy', 'x/y', ']', 'b}d', 'q/r/s'];
    for (const glob of globs) {
      for (const path of paths) {
        if (matchesLockGlob(path, glob)) assert.ok(globsOverlap(glob, path), `${glob} covers ${path}`);
      }
    }
  });
});
