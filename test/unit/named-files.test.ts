import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namedFiles } from '../../workflows/named-files';

describe('namedFiles', () => {
  const files = (n: number) => Array.from({ length: n }, (_, i) => `src/${i}.ts`);

  it('names the first 20 files and counts the rest, with those the list left out', () => {
    assert.equal(namedFiles(files(1000), 7), `${files(20).join(', ')} and 987 more`);
  });

  it('names every file when there are 20 at most', () => {
    assert.equal(namedFiles(files(20)), files(20).join(', '));
    assert.equal(namedFiles(['a.ts'], 2), 'a.ts and 2 more');
  });
});
