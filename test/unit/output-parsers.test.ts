import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAttempt } from '../../activities/agent/classify-attempt';
import { createParser, OUTPUT_PARSERS } from '../../activities/agent/parsers';
import type { OutputFormat } from '../../src/config/agents-file';
import { FIXTURES, type OutputFixture } from '../fixtures/agent-output';

/** Feeds a fixture to a fresh parser in small chunks (lines split across chunks), then classifies it. */
function run(format: OutputFormat, fixture: OutputFixture, chunkSize = 7) {
  const parser = createParser(format);
  for (let i = 0; i < fixture.stdout.length; i += chunkSize)
    parser.push('stdout', fixture.stdout.slice(i, i + chunkSize));
  if (fixture.stderr) parser.push('stderr', fixture.stderr);
  const parsed = parser.finish(fixture.end);
  const verdict = classifyAttempt({
    end: fixture.end,
    parsed,
    parser,
    stdoutTail: fixture.stdout,
    stderrTail: fixture.stderr ?? '',
    profilePatterns: [],
    timeoutSeconds: 60,
    idleSeconds: 5,
    cancelRequested: false,
  });
  return { parsed, verdict };
}

describe('output parsers on recorded formats', () => {
  it('has a parser for every output format of the agents file', () => {
    assert.deepEqual(Object.keys(OUTPUT_PARSERS).sort(), Object.keys(FIXTURES).sort());
  });

  for (const [format, fixtures] of Object.entries(FIXTURES) as [OutputFormat, OutputFixture[]][]) {
    describe(format, () => {
      for (const fixture of fixtures) {
        it(`${fixture.name} → ${fixture.expect.failureClass}`, () => {
          const { parsed, verdict } = run(format, fixture);
          const { failureClass, resetInSeconds, ...fields } = fixture.expect;
          assert.equal(verdict.failureClass, failureClass, `${verdict.error ?? ''} ${JSON.stringify(parsed)}`);
          for (const [field, value] of Object.entries(fields)) {
            if (value !== undefined) assert.deepEqual(parsed[field as keyof typeof parsed], value, field);
          }
          if (resetInSeconds === null) assert.equal(parsed.resetAt, undefined, 'no reset time');
          else if (resetInSeconds !== undefined) {
            assert.ok(parsed.resetAt !== undefined, 'a reset time was found');
            const seconds = (parsed.resetAt - Date.now()) / 1000;
            assert.ok(Math.abs(seconds - resetInSeconds) < 3, `resets in ${seconds}s, not ${resetInSeconds}s`);
          }
          if (failureClass !== 'succeeded') assert.ok(verdict.error, 'a failed attempt says why');
        });
      }
      it('reads the same output whole as in chunks', () => {
        for (const fixture of fixtures) {
          const whole = run(format, fixture, 1 << 30);
          const chunked = run(format, fixture, 3);
          assert.deepEqual(
            { ...chunked.parsed, resetAt: undefined },
            { ...whole.parsed, resetAt: undefined },
            fixture.name,
          );
        }
      });
    });
  }
});

describe('classifyAttempt order', () => {
  const text = createParser('text');
  const base = {
    parsed: { final: true },
    parser: text,
    stdoutTail: '',
    stderrTail: '',
    profilePatterns: [] as const,
    timeoutSeconds: 10,
    cancelRequested: false,
  };

  it('puts how the run was stopped above anything its output says', () => {
    const parsed = { final: true, failureClass: 'rate_limited' as const };
    assert.equal(classifyAttempt({ ...base, parsed, end: { kind: 'timed_out' } }).failureClass, 'timeout');
    assert.equal(classifyAttempt({ ...base, parsed, end: { kind: 'stalled' } }).failureClass, 'stalled');
    assert.equal(
      classifyAttempt({ ...base, parsed, end: { kind: 'aborted' }, cancelRequested: true }).failureClass,
      'cancelled',
    );
    assert.equal(classifyAttempt({ ...base, parsed, end: { kind: 'aborted' } }).failureClass, 'crash');
    assert.equal(
      classifyAttempt({ ...base, parsed, end: { kind: 'cut_off' }, cancelRequested: true }).failureClass,
      'crash',
      'a cut-off worker stopped it, whatever else was asked',
    );
  });

  it('tells a program that cannot run from a spawn the worker could not make this time', () => {
    const failed = (code: string) => ({ kind: 'spawn_failed', code, message: `spawn agent ${code}` }) as const;
    assert.equal(classifyAttempt({ ...base, end: failed('ENOENT') }).failureClass, 'agent_not_found');
    assert.equal(classifyAttempt({ ...base, end: failed('EACCES') }).failureClass, 'agent_not_found');
    // Arguments over the kernel's limit: the prompt does not fit this agent, but may fit the next (on stdin).
    const tooLong = classifyAttempt({ ...base, end: failed('E2BIG') });
    assert.equal(tooLong.failureClass, 'context_overflow');
    assert.match(tooLong.error ?? '', /on stdin/);
    for (const code of ['EAGAIN', 'EMFILE', 'ENOMEM', 'ESPAWNER', 'PROMPT_FILE', 'UNKNOWN']) {
      const v = classifyAttempt({ ...base, end: failed(code) });
      assert.equal(v.failureClass, 'crash', code);
      assert.equal(v.error, `spawn agent ${code}`);
    }
  });

  it("lets a profile's patterns fail a run that exited 0, and the stream's own report win over them", () => {
    const profilePatterns = [['auth', /license expired/i]] as const;
    const end = { kind: 'exited', exitCode: 0 } as const;
    assert.equal(
      classifyAttempt({ ...base, end, profilePatterns, stdoutTail: 'sorry, license expired' }).failureClass,
      'auth',
    );
    assert.equal(
      classifyAttempt({
        ...base,
        end,
        profilePatterns,
        stdoutTail: 'license expired',
        parsed: { final: true, failureClass: 'overloaded' },
      }).failureClass,
      'overloaded',
    );
  });

  it("leaves a success the agent's final record reports to it, whatever its work quotes", () => {
    const profilePatterns = [['rate_limited', /You've hit your usage limit/]] as const;
    const codex = createParser('codex-jsonl');
    const end = { kind: 'exited', exitCode: 0 } as const;
    const stdoutTail = `{"type":"item.completed","item":{"text":"grep found: You've hit your usage limit"}}`;
    const reported = { ...base, parser: codex, end, profilePatterns, stdoutTail };
    assert.equal(classifyAttempt({ ...reported, parsed: { final: true } }).failureClass, 'succeeded');
    assert.equal(
      classifyAttempt({ ...reported, parsed: { final: false } }).failureClass,
      'rate_limited',
      'without its final record, the patterns decide',
    );
    // Aider's usage line is its final record: its answer and edits quote anything too.
    const aider = createParser('aider-text');
    aider.push(
      'stdout',
      "Added a retry when the API says You've hit your usage limit\nTokens: 2.1k sent, 138 received.\n",
    );
    const aiderEnd = aider.finish(end);
    assert.equal(
      classifyAttempt({ ...reported, parser: aider, parsed: aiderEnd, stdoutTail: "You've hit your usage limit" })
        .failureClass,
      'succeeded',
    );
  });

  it("takes Gemini CLI's report on stdout over an error object at the end of its stderr", () => {
    const gemini = createParser('gemini-json');
    gemini.push('stdout', JSON.stringify({ response: 'Done.', stats: {} }));
    gemini.push(
      'stderr',
      'MCP server said:\n{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"Method not found"}}\n',
    );
    const parsed = gemini.finish({ kind: 'exited', exitCode: 0 });
    assert.equal(parsed.failureClass, undefined, JSON.stringify(parsed));
    assert.equal(parsed.text, 'Done.');
  });

  it("reads an agent CLI's stderr whole with the built-in patterns, any command's only at its end", () => {
    const end = { kind: 'exited', exitCode: 1 } as const;
    const stderrTail = ['AuthenticationError: invalid credentials', ...Array.from({ length: 10 }, () => 'ok')].join(
      '\n',
    );
    assert.equal(classifyAttempt({ ...base, end, stderrTail }).failureClass, 'nonzero_exit');
    const codex = createParser('codex-jsonl');
    assert.equal(
      classifyAttempt({ ...base, parser: codex, parsed: { final: false }, end, stderrTail }).failureClass,
      'auth',
    );
    // The profile's own patterns know the command: they read all of it.
    const profilePatterns = [['auth', /AuthenticationError/]] as const;
    assert.equal(classifyAttempt({ ...base, end, stderrTail, profilePatterns }).failureClass, 'auth');
  });

  it('uses exit codes before stderr patterns', () => {
    const gemini = createParser('gemini-json');
    const v = classifyAttempt({
      ...base,
      parser: gemini,
      parsed: { final: false },
      end: { kind: 'exited', exitCode: 41 },
      stderrTail: '429 Too Many Requests',
    });
    assert.equal(v.failureClass, 'auth');
    assert.equal(v.exitCode, 41);
  });
});
