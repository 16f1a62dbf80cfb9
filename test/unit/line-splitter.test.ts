import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createParser } from '../../activities/agent/parsers';
import { LineSplitter, MAX_LINE_CHARS, Tail } from '../../activities/agent/parsers/line-splitter';

const CHUNK = 64 * 1024;
const MB = 1024 * 1024;

/** `total` characters of "x" in CHUNK-sized pushes, with `each` called after every push. */
function pushFill(push: (chunk: string) => void, total: number, each: () => void = () => undefined): void {
  const chunk = 'x'.repeat(CHUNK);
  for (let sent = 0; sent < total; sent += CHUNK) {
    push(chunk);
    each();
  }
}

describe('LineSplitter', () => {
  it('joins lines split across chunks, and strips CR', () => {
    const lines = new LineSplitter();
    assert.deepEqual(lines.push('ab'), []);
    assert.deepEqual(lines.push('c\r\nd\n\ne'), ['abc', 'd', '']);
    assert.deepEqual(lines.push('f\r'), []);
    assert.deepEqual(lines.push('\n'), ['ef']);
    assert.deepEqual(lines.push('tail'), []);
    assert.deepEqual(lines.end(), ['tail']);
    assert.deepEqual(lines.end(), []);
  });

  it('holds at most MAX_LINE_CHARS of a 64 MB line without a newline, and drops that line whole', () => {
    const lines = new LineSplitter();
    pushFill(
      (chunk) => assert.deepEqual(lines.push(chunk), []),
      64 * MB,
      () => assert.ok(lines.pendingChars <= MAX_LINE_CHARS, `held ${lines.pendingChars} characters`),
    );
    assert.equal(lines.pendingChars, 0, 'nothing of the over-long line is held once it passed the limit');
    // The next line is read whole, as if the long one had not been there.
    assert.deepEqual(lines.push('xx\n{"next":1}\npart'), ['{"next":1}']);
    assert.equal(lines.pendingChars, 4);
    assert.deepEqual(lines.end(), ['part']);
  });

  it('drops a line just over the limit and keeps one at it', () => {
    const lines = new LineSplitter();
    const atLimit = 'a'.repeat(MAX_LINE_CHARS);
    assert.deepEqual(lines.push(`${atLimit}\n${atLimit}b\nc\n`), [atLimit, 'c']);
    assert.deepEqual(lines.push(`${atLimit}b`), []);
    assert.deepEqual(lines.end(), [], 'an over-long last line is dropped too');
  });

  it('keeps the parsers consistent after an over-long line (ollama-http)', () => {
    const parser = createParser('ollama-http');
    parser.push('stdout', '{"response":"Hel","done":false}\n{"response":"');
    pushFill((chunk) => parser.push('stdout', chunk), 64 * MB);
    parser.push('stdout', '"}\n{"response":"lo","done":false}\n');
    parser.push('stdout', '{"response":"","done":true,"prompt_eval_count":5,"eval_count":7}\n');
    const parsed = parser.finish({ kind: 'exited', exitCode: 0 });
    assert.equal(parsed.final, true);
    assert.equal(parsed.text, 'Hello');
    assert.equal(parsed.inputTokens, 5);
    assert.equal(parsed.outputTokens, 7);
  });
});

describe('Tail', () => {
  it('keeps the last `max` characters however the stream was cut', () => {
    const text = Array.from({ length: 5000 }, (_, i) => `line ${i}\n`).join('');
    for (const size of [1, 7, 4096, 100_000]) {
      const tail = new Tail(10_000);
      for (let i = 0; i < text.length; i += size) tail.push(text.slice(i, i + size));
      assert.equal(tail.toString(), text.slice(-10_000), `chunks of ${size}`);
    }
    const short = new Tail(10_000);
    short.push('abc');
    assert.equal(short.toString(), 'abc');
  });
});
