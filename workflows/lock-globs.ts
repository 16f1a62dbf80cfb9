/**
 * Whether two lock globs can match a common path. Workflow-safe and deliberately conservative: when it
 * cannot tell, it says they overlap, so two tasks are serialised rather than allowed to collide.
 * Globs are relative to the repository, `/`-separated: `**` is any number of segments, `*` and `?`
 * stay within a segment, and `[…]` or `{…}` are treated like `*`.
 */

const WILDCARD = /[*?[{]/;

function segmentsOverlap(a: string, b: string): boolean {
  const wildA = WILDCARD.exec(a);
  const wildB = WILDCARD.exec(b);
  if (!wildA && !wildB) return a === b;
  // The literal text before the first wildcard and after the last one must agree; what lies between
  // is assumed to be able to match anything.
  const prefixA = a.slice(0, wildA ? wildA.index : a.length);
  const prefixB = b.slice(0, wildB ? wildB.index : b.length);
  const n = Math.min(prefixA.length, prefixB.length);
  if (prefixA.slice(0, n) !== prefixB.slice(0, n)) return false;
  const suffix = (s: string) => s.slice(Math.max(...['*', '?', ']', '}'].map((c) => s.lastIndexOf(c))) + 1);
  const suffixA = wildA ? suffix(a) : a;
  const suffixB = wildB ? suffix(b) : b;
  const m = Math.min(suffixA.length, suffixB.length);
  return suffixA.slice(suffixA.length - m) === suffixB.slice(suffixB.length - m);
}

function pathsOverlap(a: readonly string[], i: number, b: readonly string[], j: number): boolean {
  if (i === a.length && j === b.length) return true;
  if (i < a.length && a[i] === '**')
    return pathsOverlap(a, i + 1, b, j) || (j < b.length && pathsOverlap(a, i, b, j + 1));
  if (j < b.length && b[j] === '**')
    return pathsOverlap(a, i, b, j + 1) || (i < a.length && pathsOverlap(a, i + 1, b, j));
  if (i === a.length || j === b.length) return false;
  return segmentsOverlap(a[i] as string, b[j] as string) && pathsOverlap(a, i + 1, b, j + 1);
}

const split = (glob: string): string[] => glob.split('/').filter((s) => s !== '' && s !== '.');

export function globsOverlap(a: string, b: string): boolean {
  return pathsOverlap(split(a), 0, split(b), 0);
}

/** Whether any glob of one set can overlap any of the other. */
export function lockSetsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => globsOverlap(x, y)));
}

/** Problems that make a glob unusable as a lock (absolute, or escaping the repository), or none. */
export function lockGlobProblem(glob: string): string | undefined {
  if (glob.startsWith('/')) return `lock "${glob}" must be relative to the repository`;
  if (glob.split('/').includes('..')) return `lock "${glob}" must not leave the repository`;
  if (split(glob).length === 0) return `lock "${glob}" names no path`;
  return undefined;
}

const escapeRegex = (text: string): string => text.replace(/[.+^$()|\\]/g, '\\$&');

/** The glob as an anchored regular expression over `/`-separated repository-relative paths. */
function globRegex(glob: string): RegExp {
  const parts = split(glob).map((segment) => {
    if (segment === '**') return '(?:[^/]+/)*';
    let out = '';
    for (let i = 0; i < segment.length; i++) {
      const c = segment[i] as string;
      if (c === '*') out += '[^/]*';
      else if (c === '?') out += '[^/]';
      else if (c === '[') {
        const end = segment.indexOf(']', i + 1);
        if (end < 0) out += '\\[';
        else {
          out += `[${segment.slice(i + 1, end).replace(/^!/, '^')}]`;
          i = end;
        }
      } else if (c === '{') {
        const end = segment.indexOf('}', i + 1);
        if (end < 0) out += '\\{';
        else {
          out += `(?:${segment
            .slice(i + 1, end)
            .split(',')
            .map(escapeRegex)
            .join('|')})`;
          i = end;
        }
      } else out += escapeRegex(c);
    }
    return `${out}/`;
  });
  // Every part ends in '/', the path does not: match against the path plus a trailing '/'.
  return new RegExp(`^${parts.join('')}$`);
}

/** Whether a repository-relative file path is covered by a lock glob. */
export function matchesLockGlob(path: string, glob: string): boolean {
  return globRegex(glob).test(`${split(path).join('/')}/`);
}

/** The changed files no declared lock covers (the task's `lockViolations`). */
export function lockViolations(changedFiles: readonly string[], globs: readonly string[]): string[] {
  return changedFiles.filter((file) => !globs.some((glob) => matchesLockGlob(file, glob)));
}
