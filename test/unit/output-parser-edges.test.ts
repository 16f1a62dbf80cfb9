import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createParser } from '../../activities/agent/parsers';
import type { OutputStream, ParsedOutput } from '../../activities/agent/parsers/types';
import type { OutputFormat } from '../../src/config/agents-file';
import { within } from '../support/wait-for';

/** Feeds the chunks, in order and on their streams, to a fresh parser of `format`, and finishes it with exit 0. */
function parse(format: OutputFormat, chunks: [OutputStream, string][]): ParsedOutput {
  const parser = createParser(format);
  for (const [stream, text] of chunks) parser.push(stream, text);
  return parser.finish({ kind: 'exited', exitCode: 0 });
}

/** `text` as stdout chunks of 64 KB, as a pipe delivers it. */
const stdoutChunks = (text: string): [OutputStream, string][] =>
  Array.from({ length: Math.ceil(text.length / 65_536) }, (_, i) => [
    'stdout',
    text.slice(i * 65_536, (i + 1) * 65_536),
  ]);

describe('aider-text', () => {
  it('reads its usage line whole when stderr arrives in the middle of it', () => {
    const parsed = parse('aider-text', [
      ['stdout', 'Applied edit to app.py\nTokens: 2.1k sent, 138 rec'],
      ['stderr', 'Warning: terminal does not support colors\n'],
      ['stdout', 'eived. Cost: $0.0084 message, $0.0251 session.\n'],
    ]);
    assert.equal(parsed.final, true, JSON.stringify(parsed));
    assert.equal(parsed.inputTokens, 2100);
    assert.equal(parsed.outputTokens, 138);
    assert.equal(parsed.costUsd, 0.0251);
  });

  it('reads the cost of a usage line Rich wrapped at 80 columns, its end on the next line', () => {
    // No terminal: Rich prints 80 columns wide, and "session." goes to the next line.
    const wrapped = parse('aider-text', [
      [
        'stdout',
        'Applied edit to app.py\nTokens: 15k sent, 12k cache hit, 1.2k received. Cost: $0.0123 message, $0.0456\n',
      ],
      ['stderr', 'Warning: terminal does not support colors\n'],
      ['stdout', 'session.\n'],
    ]);
    assert.equal(wrapped.final, true, JSON.stringify(wrapped));
    assert.equal(wrapped.costUsd, 0.0456);
    assert.equal(wrapped.outputTokens, 1200);
    // Wrapped anywhere in its cost; and the cost on a line of its own (a call that both wrote and read the cache).
    const early = parse('aider-text', [
      ['stdout', 'Tokens: 125k sent, 98k cache write, 12k received. Cost:\n$12.34 message, $123.45 session.\n'],
    ]);
    assert.equal(early.costUsd, 123.45);
    const ownLine = parse('aider-text', [
      [
        'stdout',
        'Tokens: 50k sent, 2k cache write, 45k cache hit, 1.2k received.\nCost: $0.0123 message, $0.0456 session.\n',
      ],
    ]);
    assert.equal(ownLine.costUsd, 0.0456);
    // A model without a price: a usage line without a cost, and the next line is no cost.
    const unpriced = parse('aider-text', [['stdout', 'Tokens: 2.1k sent, 138 received.\nsession.\n']]);
    assert.equal(unpriced.final, true);
    assert.equal(unpriced.costUsd, undefined);
  });

  it('reads a stderr error line split by stdout output', () => {
    const parsed = parse('aider-text', [
      ['stderr', 'litellm.AuthenticationError: Anthropic'],
      ['stdout', 'Repo-map: using 1024 tokens\n'],
      ['stderr', 'Exception - invalid x-api-key\n'],
    ]);
    assert.equal(parsed.final, false);
    assert.equal(parsed.failureClass, 'auth');
    assert.match(parsed.error ?? '', /AuthenticationError: AnthropicException - invalid x-api-key/);
  });
});

describe('aider-text on a line that is one long word', () => {
  it('reads it, and the error after it, without stalling its thread', async () => {
    // In a thread of its own: a pattern that backtracks on such a line (a hex blob) takes minutes on it.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const parser = require(workerData.parsers).createParser('aider-text');
       parser.push('stdout', 'a'.repeat(1 << 20) + '\\n');
       parser.push('stderr', 'litellm.RateLimitError: the provider rate limited you\\n');
       parentPort.postMessage(parser.finish({ kind: 'exited', exitCode: 0 }));`,
      { eval: true, workerData: { parsers: require.resolve('../../activities/agent/parsers') } },
    );
    try {
      const [parsed] = (await within('the parser to read the line', 30_000, once(worker, 'message'))) as [ParsedOutput];
      assert.equal(parsed.failureClass, 'rate_limited', JSON.stringify(parsed));
    } finally {
      await worker.terminate();
    }
  });
});

describe('claude-json', () => {
  const result = {
    type: 'result',
    subtype: 'success',
    is_error: false,
    result: 'Done: see {"a": {"b": 1}} and } {',
    total_cost_usd: 0.42,
    usage: { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 5, output_tokens: 7 },
    num_turns: 2,
    session_id: 'big-1',
  };
  const verbose = [
    { type: 'system', subtype: 'init', session_id: 'big-1' },
    { type: 'assistant', message: { content: [{ type: 'text', text: `{${'y'.repeat(17 * 1024 * 1024)}}` }] } },
    { type: 'user', message: { content: [{ type: 'tool_result', content: '{"nested": [{"x": 1}]}' }] } },
    result,
  ];

  for (const [form, text] of [
    ['on one line', `${JSON.stringify(verbose)}\n`],
    ['pretty-printed', `${JSON.stringify(verbose, null, 2)}\n`],
  ] as const) {
    it(`finds the result at the end of a --verbose array over 16 MB (${form})`, () => {
      const parsed = parse('claude-json', stdoutChunks(text));
      assert.equal(parsed.final, true);
      assert.equal(parsed.failureClass, undefined);
      assert.equal(parsed.text, result.result);
      assert.equal(parsed.costUsd, 0.42);
      assert.equal(parsed.inputTokens, 15);
      assert.equal(parsed.outputTokens, 7);
      assert.equal(parsed.turns, 2);
      assert.equal(parsed.sessionId, 'big-1');
    });
  }

  it('finds no result in a long output cut off before it', () => {
    const text = JSON.stringify(verbose.slice(0, 2)).slice(0, -3);
    const parsed = parse('claude-json', stdoutChunks(text));
    assert.equal(parsed.final, false);
  });
});

describe('gemini tokens', () => {
  it('counts thinking as output, tool-use prompts as input, and skips a null model entry (gemini-json)', () => {
    const report = {
      session_id: 'g-2',
      response: 'ok',
      stats: {
        models: {
          'gemini-2.5-pro': {
            api: { totalRequests: 2 },
            tokens: { prompt: 1000, candidates: 20, total: 1224, cached: 0, thoughts: 200, tool: 4 },
          },
          'gemini-2.5-flash': null,
        },
      },
    };
    const parsed = parse('gemini-json', [['stdout', JSON.stringify(report)]]);
    assert.equal(parsed.final, true);
    assert.equal(parsed.text, 'ok');
    assert.equal(parsed.inputTokens, 1004);
    assert.equal(parsed.outputTokens, 220);
    assert.equal(parsed.turns, 2);
  });

  it('counts thinking as output (gemini-stream-json)', () => {
    const events = [
      { type: 'init', session_id: 'gs-2', model: 'gemini-2.5-pro' },
      { type: 'message', role: 'assistant', content: 'ok', delta: true },
      { type: 'result', status: 'success', stats: { total_tokens: 1220, input_tokens: 1000, output_tokens: 20 } },
    ];
    const parsed = parse('gemini-stream-json', [['stdout', events.map((e) => `${JSON.stringify(e)}\n`).join('')]]);
    assert.equal(parsed.inputTokens, 1000);
    assert.equal(parsed.outputTokens, 220);
  });
});

/**
 * Gemini CLI throws a RetryableQuotaError for a per-minute quota and for a 503 alike (its retries spent):
 * the server's words tell an overloaded model from a spent quota.
 */
describe('gemini quota errors', () => {
  const cases: [string, string][] = [
    ['The model is overloaded. Please try again later.', 'overloaded'],
    ['No capacity available for model gemini-3-flash-preview on the server', 'overloaded'],
    ['Resource has been exhausted (e.g. check quota).', 'rate_limited'],
    ['You have exhausted your capacity on this model. Your quota will reset after 2s.', 'rate_limited'],
  ];
  for (const [message, failureClass] of cases) {
    it(`classes a RetryableQuotaError saying "${message}" ${failureClass}`, () => {
      const error = { type: 'RetryableQuotaError', message, code: 1 };
      const json = createParser('gemini-json');
      json.push('stderr', `${JSON.stringify({ session_id: 'g-3', error }, null, 2)}\n`);
      assert.equal(json.finish({ kind: 'exited', exitCode: 1 }).failureClass, failureClass, 'gemini-json');
      const streamed = parse('gemini-stream-json', [
        ['stdout', `${JSON.stringify({ type: 'result', status: 'error', error, stats: {} })}\n`],
      ]);
      assert.equal(streamed.failureClass, failureClass, 'gemini-stream-json');
    });
  }
});
