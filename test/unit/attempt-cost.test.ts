import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attemptCost } from '../../activities/agent/cost';
import { createParser } from '../../activities/agent/parsers';
import type { ParsedOutput } from '../../activities/agent/parsers/types';
import type { OutputFormat } from '../../src/config/agents-file';
import { FIXTURES } from '../fixtures/agent-output';

/** What the parser of `format` reads from that family's first successful run of the fixtures. */
function parsedSuccess(format: OutputFormat): ParsedOutput {
  const fixture = FIXTURES[format]?.find((f) => f.expect.failureClass === 'succeeded');
  assert.ok(fixture, `${format} has a successful run`);
  const parser = createParser(format);
  parser.push('stdout', fixture.stdout);
  return parser.finish(fixture.end);
}

describe('attemptCost', () => {
  const pricing = { inputPerMillionUsd: 1.25, cachedInputPerMillionUsd: 0.125, outputPerMillionUsd: 10 };

  it("prices Codex's cached input, which its input tokens include, at the cached price", () => {
    // 24,763 input tokens of which 24,448 cached, 122 output.
    const parsed = parsedSuccess('codex-jsonl');
    assert.equal(attemptCost(parsed, pricing), 0.00467); // 315 × 1.25 + 24,448 × 0.125 + 122 × 10, per million
  });

  it("prices Gemini's cached prompt tokens at the cached price", () => {
    // prompt 24,939 + 8,965 and tool 28 in, 21,263 of them cached; 214 out (candidates and thoughts).
    const parsed = parsedSuccess('gemini-json');
    assert.equal(attemptCost(parsed, pricing), 0.020634); // 12,669 × 1.25 + 21,263 × 0.125 + 214 × 10
  });

  it('prices cached input at the input price when the profile names no cached price', () => {
    const parsed = parsedSuccess('codex-jsonl');
    const inputOnly = { inputPerMillionUsd: 1.25, outputPerMillionUsd: 10 };
    assert.equal(attemptCost(parsed, inputOnly), 0.032174); // 24,763 × 1.25 + 122 × 10
  });

  it("takes Claude Code's reported cost over its tokens, and prices its cache reads alone as cached", () => {
    const parsed = parsedSuccess('claude-json');
    assert.equal(attemptCost(parsed, pricing), 0.0421);
    // Without a reported cost: input_tokens 12 and the cache writes (3,000) at the input price, the cache
    // reads (9,000) at the cached price.
    const claude = { inputPerMillionUsd: 3, cachedInputPerMillionUsd: 0.3, outputPerMillionUsd: 15 };
    assert.equal(attemptCost({ ...parsed, costUsd: undefined }, claude), 0.018486); // 3,012 × 3 + 9,000 × 0.3 + 450 × 15
  });

  it('is unknown without prices, or without tokens', () => {
    assert.equal(attemptCost(parsedSuccess('codex-jsonl'), undefined), undefined);
    assert.equal(attemptCost({ final: true }, pricing), undefined);
  });
});
