import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { shellQuote } from '../../src/cli/shell-quote';

const WORDS = [
  'failed',
  'team=docs',
  'c1:2/3.4-5_6@7%8+9,0',
  '',
  'a b',
  "it's",
  "'",
  '$HOME',
  '`id`',
  '*',
  '~',
  'a\nb',
];

describe('shellQuote', () => {
  it('leaves plain words as they are', () => {
    assert.equal(shellQuote('team=docs'), 'team=docs');
    assert.equal(shellQuote('eyJ0cyI6MX0.abc-_'), 'eyJ0cyI6MX0.abc-_');
  });

  it('quotes the rest so that a POSIX shell reads each back as one word, as it was', () => {
    assert.equal(shellQuote("it's a b"), `'it'\\''s a b'`);
    // sh prints each word it reads with a NUL after it, so that a newline inside a word is kept apart.
    const printed = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${WORDS.map(shellQuote).join(' ')}`], {
      encoding: 'utf8',
    });
    assert.deepEqual(printed.split('\0').slice(0, -1), WORDS);
  });
});
