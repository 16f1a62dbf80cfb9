/**
 * Lock globs: whether two can match a common path (the lock manager's grants, in a workflow), whether
 * one covers a changed file (the commit activity), and whether one is readable at all (the API).
 * Globs are relative to the repository, `/`-separated: a `**` segment is any number of segments; within
 * one segment `*` is any run of characters, `?` one character, `[…]` one of a class (`[!…]` or `[^…]`
 * negated) and `{a,b}` one of its alternatives (which hold no braces). Other characters are themselves.
 */

const WILDCARD = /[*?[{]/;

/**
 * Path segments a lock glob may have, and a task's locks in all. The lock manager compares every glob
 * of a waiting task with every glob of each task before it, inside one workflow task, in time that
 * grows with the product of their segment counts: at these limits, two tasks compare in about 10 ms at
 * worst on this project's 2-core benchmark machine.
 */
const MAX_LOCK_SEGMENTS = 32;
export const MAX_TASK_LOCK_SEGMENTS = 256;

/** The path segments of a lock glob, as MAX_LOCK_SEGMENTS and MAX_TASK_LOCK_SEGMENTS count them. */
export const lockSegmentCount = (glob: string): number => split(glob).length;

/** What the overlap check reads of a segment: `**`, or its literal text before its first wildcard and after its last. */
interface SegmentEnds {
  globstar: boolean;
  wild: boolean;
  prefix: string;
  suffix: string;
}

function segmentEnds(segment: string): SegmentEnds {
  const wild = WILDCARD.exec(segment);
  const last = Math.max(...['*', '?', ']', '}'].map((c) => segment.lastIndexOf(c)));
  return {
    globstar: segment === '**',
    wild: wild !== null,
    prefix: wild ? segment.slice(0, wild.index) : segment,
    suffix: wild ? segment.slice(last + 1) : segment,
  };
}

function segmentsOverlap(a: SegmentEnds, b: SegmentEnds): boolean {
  if (!a.wild && !b.wild) return a.prefix === b.prefix;
  // The literal text before the first wildcard and after the last one must agree; what lies between
  // is assumed to be able to match anything.
  const n = Math.min(a.prefix.length, b.prefix.length);
  if (a.prefix.slice(0, n) !== b.prefix.slice(0, n)) return false;
  const m = Math.min(a.suffix.length, b.suffix.length);
  return a.suffix.slice(a.suffix.length - m) === b.suffix.slice(b.suffix.length - m);
}

/**
 * Whether a[i…] and b[j…] can match a common path. Each `**` tries two ways, so every (i, j) is answered
 * once and remembered: unremembered, runs of `**` cost exponential time inside the lock manager's
 * workflow task, past the deadlock timeout. The answers are those of the plain recursion (replayed
 * histories depend on them), only found in O(a.length × b.length).
 */
function pathsOverlap(a: readonly SegmentEnds[], b: readonly SegmentEnds[]): boolean {
  // 0: not answered yet; 1: no; 2: yes.
  const known = new Int8Array((a.length + 1) * (b.length + 1));
  const overlap = (i: number, j: number): boolean => {
    const key = i * (b.length + 1) + j;
    if (known[key] === 0) known[key] = firstOverlap(i, j) ? 2 : 1;
    return known[key] === 2;
  };
  const firstOverlap = (i: number, j: number): boolean => {
    if (i === a.length && j === b.length) return true;
    if (i < a.length && a[i]?.globstar) return overlap(i + 1, j) || (j < b.length && overlap(i, j + 1));
    if (j < b.length && b[j]?.globstar) return overlap(i, j + 1) || (i < a.length && overlap(i + 1, j));
    if (i === a.length || j === b.length) return false;
    return segmentsOverlap(a[i] as SegmentEnds, b[j] as SegmentEnds) && overlap(i + 1, j + 1);
  };
  return overlap(0, 0);
}

const split = (glob: string): string[] => glob.split('/').filter((s) => s !== '' && s !== '.');

/**
 * Whether two lock globs can match a common path. Workflow-safe (the lock manager grants by it) and
 * deliberately conservative: when it cannot tell, it says they overlap, so two tasks are serialised
 * rather than allowed to collide. `[…]` and `{…}` are treated like `*`.
 */
export function globsOverlap(a: string, b: string): boolean {
  return pathsOverlap(overlapEnds(a), overlapEnds(b));
}

/** A glob's segments as the overlap check reads them; `**` after `**` adds nothing, and is left out. */
const overlapEnds = (glob: string): SegmentEnds[] =>
  split(glob)
    .filter((segment, i, all) => !(segment === '**' && all[i - 1] === '**'))
    .map(segmentEnds);

/** How many globs a check from `lockSetOverlapCheck` keeps read: a lock table holds about 3,000 tasks' locks. */
const READINGS_KEPT = 20_000;

/**
 * A check of whether any glob of one lock set can overlap any of the other, which reads each glob once
 * for as long as it is kept (the lock manager keeps one for its run, in its workflow function). The
 * manager compares each waiter's globs with every holder's and earlier waiter's in one activation:
 * reading each glob once instead of at every comparison makes a comparison about ten times faster, so a
 * long table stays within the workflow task's deadlock timeout.
 */
export function lockSetOverlapCheck(): (a: readonly string[], b: readonly string[]) => boolean {
  const readings = new Map<string, readonly SegmentEnds[]>();
  const read = (glob: string): readonly SegmentEnds[] => {
    let ends = readings.get(glob);
    if (ends === undefined) {
      ends = overlapEnds(glob);
      if (readings.size >= READINGS_KEPT) readings.clear();
      readings.set(glob, ends);
    }
    return ends;
  };
  return (a, b) => {
    const endsB = b.map(read);
    return a.some((x) => {
      const endsX = read(x);
      return endsB.some((y) => pathsOverlap(endsX, y));
    });
  };
}

/** One segment of a glob, read (by code point) into what each part of it matches. */
type Token =
  | { kind: 'char'; char: string }
  | { kind: 'any' }
  | { kind: 'star' }
  | { kind: 'class'; negated: boolean; ranges: (readonly [number, number])[] }
  | { kind: 'alternatives'; choices: Token[][] };

/**
 * A glob segment's tokens, and the first thing in it a glob should not hold. What cannot be read is taken
 * as literal text (an unclosed `[` or `{`, a `{` within braces), so globs accepted before they were
 * checked still match as they did. Everything stays within the segment, as the overlap check assumes.
 */
function parseSegment(segment: string): { tokens: Token[]; problem: string | undefined } {
  const chars = Array.from(segment);
  let pos = 0;
  let problem: string | undefined;
  const note = (found: string): void => {
    problem ??= found;
  };

  // Tokens up to the segment's end or, within braces, up to the `,` or `}` that ends an alternative.
  const sequence = (inBraces: boolean): Token[] => {
    const tokens: Token[] = [];
    while (pos < chars.length) {
      const c = chars[pos] as string;
      if (inBraces && (c === ',' || c === '}')) break;
      pos++;
      if (c === '*') tokens.push({ kind: 'star' });
      else if (c === '?') tokens.push({ kind: 'any' });
      else if (c === '[') tokens.push(charClass() ?? { kind: 'char', char: c });
      else if (c === '{' && !inBraces) tokens.push(alternatives() ?? { kind: 'char', char: c });
      else {
        if (c === '{') note('has braces within braces');
        tokens.push({ kind: 'char', char: c });
      }
    }
    return tokens;
  };

  // Just after a `[`: the class up to the first `]`.
  const charClass = (): Token | undefined => {
    const end = chars.indexOf(']', pos);
    if (end < 0) {
      note('has a "[" not closed within its path segment');
      return undefined;
    }
    const body = chars.slice(pos, end);
    pos = end + 1;
    const negated = body[0] === '!' || body[0] === '^';
    const items = negated ? body.slice(1) : body;
    if (items.length === 0) note(`has an empty class "[${body.join('')}]"`);
    const ranges: [number, number][] = [];
    for (let i = 0; i < items.length; i++) {
      const from = items[i] as string;
      let to = from;
      // A `-` first or last in the class is itself.
      if (items[i + 1] === '-' && i + 2 < items.length) {
        to = items[i + 2] as string;
        i += 2;
      }
      const range: [number, number] = [from.codePointAt(0) as number, to.codePointAt(0) as number];
      if (range[0] > range[1]) note(`has a range out of order ("${from}-${to}")`);
      ranges.push(range);
    }
    return { kind: 'class', negated, ranges };
  };

  // Just after a `{`: its alternatives up to the `}` that closes them.
  const alternatives = (): Token | undefined => {
    const start = pos;
    const before = problem;
    const choices = [sequence(true)];
    while (chars[pos] === ',') {
      pos++;
      choices.push(sequence(true));
    }
    if (chars[pos] === '}') {
      pos++;
      return { kind: 'alternatives', choices };
    }
    // Read again as literal text from just after the `{`: what was noted inside does not hold.
    pos = start;
    problem = before;
    note('has a "{" not closed within its path segment');
    return undefined;
  };

  const tokens = sequence(false);
  return { tokens, problem };
}

/** Problems that make a glob unusable as a lock (absolute, escaping the repository, unreadable), or none. */
export function lockGlobProblem(glob: string): string | undefined {
  if (glob.startsWith('/')) return `lock "${glob}" must be relative to the repository`;
  if (glob.split('/').includes('..')) return `lock "${glob}" must not leave the repository`;
  const segments = split(glob);
  if (segments.length === 0) return `lock "${glob}" names no path`;
  if (segments.length > MAX_LOCK_SEGMENTS) return `lock "${glob}" has more than ${MAX_LOCK_SEGMENTS} path segments`;
  for (const segment of segments) {
    const { problem } = parseSegment(segment);
    if (problem !== undefined) return `lock "${glob}" ${problem}`;
  }
  return undefined;
}

/*
 * Matching runs over the positions a pattern can have reached in a list of items (the characters of a
 * name, the names of a path), token by token: polynomial for any glob, where a backtracking regular
 * expression can take exponential time on the agent worker's event loop.
 */

/** Reached before any item: position 0 only. */
const startOf = (items: readonly unknown[]): boolean[] => Array.from({ length: items.length + 1 }, (_, p) => p === 0);

/** Positions reached from any of `at` by any number of items (`*` in a name, `**` in a path). */
function anyRun(at: readonly boolean[]): boolean[] {
  const first = at.indexOf(true);
  return at.map((_, p) => first >= 0 && p >= first);
}

/** Positions reached from any of `at` by one item that `accepts` takes. */
function oneItem<T>(items: readonly T[], at: readonly boolean[], accepts: (item: T) => boolean): boolean[] {
  return at.map((_, p) => p > 0 && at[p - 1] === true && accepts(items[p - 1] as T));
}

function acceptsChar(token: Exclude<Token, { kind: 'star' | 'alternatives' }>, c: string): boolean {
  if (token.kind === 'any') return true;
  if (token.kind === 'char') return token.char === c;
  const code = c.codePointAt(0) as number;
  return token.ranges.some(([from, to]) => from <= code && code <= to) !== token.negated;
}

function afterTokens(tokens: readonly Token[], chars: readonly string[], at: boolean[]): boolean[] {
  return tokens.reduce((reached, token) => {
    if (token.kind === 'star') return anyRun(reached);
    if (token.kind !== 'alternatives') return oneItem(chars, reached, (c) => acceptsChar(token, c));
    return token.choices
      .map((choice) => afterTokens(choice, chars, reached))
      .reduce((all, one) => all.map((ok, p) => ok || one[p] === true));
  }, at);
}

function nameMatches(tokens: readonly Token[], name: string): boolean {
  const chars = Array.from(name);
  return afterTokens(tokens, chars, startOf(chars))[chars.length] === true;
}

/** The glob, read once, as a test of repository-relative paths. */
function globMatcher(glob: string): (path: string) => boolean {
  const parts = split(glob).map((segment) => (segment === '**' ? undefined : parseSegment(segment).tokens));
  return (path) => {
    const names = split(path);
    const end = parts.reduce(
      (at, tokens) => (tokens === undefined ? anyRun(at) : oneItem(names, at, (name) => nameMatches(tokens, name))),
      startOf(names),
    );
    return end[names.length] === true;
  };
}

/** Whether a repository-relative file path is covered by a lock glob. */
export function matchesLockGlob(path: string, glob: string): boolean {
  return globMatcher(glob)(path);
}

/** The changed files no declared lock covers (the task's `lockViolations`). */
export function lockViolations(changedFiles: readonly string[], globs: readonly string[]): string[] {
  const covers = globs.map(globMatcher);
  return changedFiles.filter((file) => !covers.some((covered) => covered(file)));
}
