import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpStatusClass, matchPatterns } from '../../activities/agent/parsers/error-patterns';
import {
  claudeWithoutResult,
  newClaudeContext,
  readClaudeMessage,
  readClaudeResult,
} from '../../activities/agent/parsers/claude-record';
import { resetTimeIn } from '../../activities/agent/parsers/reset-time';
import { rateLimitReset } from '../../activities/agent/rate-limit-reset';
import { DEFAULT_POLICIES } from '../../workflows/definitions';

describe('built-in error patterns', () => {
  it('classes temporary server failures as overloaded, whatever words or status they come with', () => {
    for (const text of [
      'API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server error"}}',
      'API Error: Request timed out.',
      'API Error: Connection error.',
      'unexpected status 500 Internal Server Error',
      'stream disconnected before completion: error sending request for url (https://api.openai.com/v1/responses)',
      'Error: read ECONNRESET',
      'HTTP/1.1 504 Gateway Timeout',
      '[API Error: {"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}]',
    ]) {
      assert.equal(matchPatterns(text), 'overloaded', text);
    }
  });

  it("classes Claude Code's subscription limits as rate limited", () => {
    for (const text of [
      '5-hour limit reached ∙ resets 5am',
      'Weekly limit reached ∙ resets Oct 9, 10am',
      'Session limit reached ∙ resets 3pm',
      'Opus limit reached ∙ resets Oct 9, 10am',
      'Claude AI usage limit reached|1753441200',
    ]) {
      assert.equal(matchPatterns(text), 'rate_limited', text);
    }
  });

  it('classes 500 and other 5xx statuses as overloaded, but not 501 and 505', () => {
    for (const status of [500, 502, 503, 504, 520, 529])
      assert.equal(httpStatusClass(status), 'overloaded', `${status}`);
    for (const status of [501, 505, 404, 400]) assert.equal(httpStatusClass(status), undefined, `${status}`);
    // A class the policies retry, on the same agent.
    assert.equal(DEFAULT_POLICIES.overloaded.action, 'retry');
  });

  it('reads a status number only where the text names it as a status, not in stack-trace line numbers', () => {
    for (const trace of [
      'TypeError: Cannot read properties of undefined\n    at main (/opt/agent/cli.js:401:17)',
      'at Object.<anonymous> (/opt/agent/cli.js:12:503)',
      'at run (/opt/agent/cli.js:429:3)\n    at cli.js:403:1 and cli.js:529:9 and cli.js:502:2',
    ]) {
      assert.equal(matchPatterns(trace), undefined, trace);
    }
    const named: [string, string][] = [
      ['Error: 429 Too Many Requests', 'rate_limited'],
      ['exceeded retry limit, last status: 429', 'rate_limited'],
      ['{"error":{"code":429}}', 'rate_limited'],
      ['HTTP 401', 'auth'],
      ['403 Forbidden', 'auth'],
      ['request failed with status code 403', 'auth'],
      ['API Error: 529', 'overloaded'],
      ['HTTP/2 503', 'overloaded'],
    ];
    for (const [text, failureClass] of named) assert.equal(matchPatterns(text), failureClass, text);
  });
});

describe('reset times said in words', () => {
  const now = Date.UTC(2025, 5, 10, 13, 20, 0);

  it('reads a delay', () => {
    assert.equal(resetTimeIn('Please try again in 20s.', now), now + 20_000);
    assert.equal(resetTimeIn('Retrying in 0.5 seconds...', now), now + 500);
    assert.equal(resetTimeIn('retry after 2 minutes', now), now + 120_000);
    assert.equal(resetTimeIn('resets in 1 hour', now), now + 3_600_000);
    assert.equal(resetTimeIn('nothing to see', now), undefined);
  });

  it('reads a delay of several units', () => {
    assert.equal(resetTimeIn('Rate limit reached. Please try again in 7m12s.', now), now + 432_000);
    assert.equal(
      resetTimeIn("You've hit your usage limit. Upgrade to Pro or try again in 2 days 3 hours.", now),
      now + (2 * 24 + 3) * 3_600_000,
    );
    assert.equal(resetTimeIn('try again in 1 hour, 5 minutes and 3 seconds', now), now + 3_903_000);
  });

  it('reads a time of day, in the zone it names', () => {
    // 13:20 UTC now: 4pm UTC is today, 10am UTC tomorrow.
    assert.equal(resetTimeIn("You've hit your limit · resets 4pm (UTC)", now), Date.UTC(2025, 5, 10, 16));
    assert.equal(resetTimeIn('resets 10am (UTC)', now), Date.UTC(2025, 5, 11, 10));
    // Berlin is UTC+2 in June: 4:30pm there is 14:30 UTC.
    assert.equal(resetTimeIn('resets 4:30pm (Europe/Berlin)', now), Date.UTC(2025, 5, 10, 14, 30));
    // Across a change of Berlin's clock: UTC+1 the evening before, UTC+2 at the reset (both ways).
    const beforeSummer = Date.UTC(2026, 2, 28, 20);
    assert.equal(resetTimeIn('resets 4pm (Europe/Berlin)', beforeSummer), Date.UTC(2026, 2, 29, 14));
    const beforeWinter = Date.UTC(2026, 9, 24, 20);
    assert.equal(resetTimeIn('resets 4pm (Europe/Berlin)', beforeWinter), Date.UTC(2026, 9, 25, 15));
    assert.equal(resetTimeIn('resets 12am (UTC)', now), Date.UTC(2025, 5, 11, 0));
    assert.equal(resetTimeIn('resets 4pm (Not/AZone)', now), undefined);
  });

  it('reads a day and a time of day: the next such day without a year', () => {
    const monday = Date.UTC(2025, 9, 6, 13, 20);
    // Without a zone, the worker's: 10am on its clock.
    assert.equal(resetTimeIn('Weekly limit reached ∙ resets Oct 9, 10am', monday), new Date(2025, 9, 9, 10).getTime());
    assert.equal(resetTimeIn('resets Oct 6 at 4pm (UTC)', monday), Date.UTC(2025, 9, 6, 16));
    assert.equal(
      resetTimeIn("You've hit your usage limit. Try again at Oct 26th, 2025 3:05 PM (UTC).", monday),
      Date.UTC(2025, 9, 26, 15, 5),
    );
    assert.equal(resetTimeIn('resets Jan 2, 10am (UTC)', Date.UTC(2025, 11, 30)), Date.UTC(2026, 0, 2, 10));
    // This morning's has passed, and next year's is too far to believe.
    assert.equal(resetTimeIn('resets Oct 6, 9am (UTC)', monday), undefined);
    assert.equal(resetTimeIn('resets Oct 40, 9am (UTC)', monday), undefined);
  });

  it('reads a time of day that has just passed as the reset coming now, not the same time tomorrow', () => {
    // Codex cuts the seconds off: a reset at 15:05:40 (the worker's clock) is "3:05 PM", past at 15:05:20.
    const local = (day: number, h: number, m: number, sec = 0) => new Date(2026, 8, day, h, m, sec).getTime();
    const said = "You've hit your usage limit. Try again at 3:05 PM.";
    // Within its minute: at most the end of it.
    assert.equal(resetTimeIn(said, local(26, 15, 5, 20)), local(26, 15, 6));
    // A few minutes late (the output read late): now.
    assert.equal(resetTimeIn(said, local(26, 15, 8)), local(26, 15, 8));
    // Long past: tomorrow's.
    assert.equal(resetTimeIn(said, local(26, 15, 20)), local(27, 15, 5));
    // With its day, as Codex says a reset on another day than today.
    assert.equal(
      resetTimeIn("You've hit your usage limit. Try again at Sep 26th, 2026 3:05 PM.", local(26, 15, 5, 20)),
      local(26, 15, 6),
    );
    assert.equal(resetTimeIn('Try again at Sep 26th, 2026 3:05 PM.', local(26, 15, 20)), undefined);
    // Just before midnight, read just after it: yesterday's, not tonight's.
    assert.equal(resetTimeIn('Try again at 11:59 PM.', local(27, 0, 0, 30)), local(27, 0, 0, 30));
  });

  it("reads Claude Code's epoch seconds, and believes no reset in the past or months away", () => {
    const at = now + 3 * 3_600_000;
    assert.equal(resetTimeIn(`Claude AI usage limit reached|${at / 1000}`, now), at);
    assert.equal(resetTimeIn(`Claude AI usage limit reached|${(now - 60_000) / 1000}`, now), undefined);
    assert.equal(resetTimeIn('try again in 90 days', now), undefined);
  });

  it("believes no reset that Claude Code's rate-limit event reports in the past or months away", () => {
    const limited = (resetsAt: number) => ({ ...newClaudeContext(), rateLimited: true, resetsAt });
    const result = { type: 'result', subtype: 'success', is_error: true, result: 'Claude AI usage limit reached' };
    const inAnHour = now + 3_600_000;
    assert.equal(readClaudeResult(result, limited(inAnHour / 1000), now).resetAt, inAnHour);
    // Milliseconds where seconds belong: some 55,000 years away.
    assert.equal(readClaudeResult(result, limited(inAnHour), now).failureClass, 'rate_limited');
    assert.equal(readClaudeResult(result, limited(inAnHour), now).resetAt, undefined);
    assert.equal(readClaudeResult(result, limited(now / 1000 - 60), now).resetAt, undefined);
    assert.equal(claudeWithoutResult(limited(Date.now())).resetAt, undefined);
  });

  it("takes Claude Code's rejected plan window for the run's limit only when no extra usage goes on", () => {
    const limitedBy = (info: Record<string, unknown>) => {
      const ctx = newClaudeContext();
      readClaudeMessage({ type: 'rate_limit_event', rate_limit_info: info, session_id: 's' }, ctx);
      return claudeWithoutResult(ctx).failureClass;
    };
    const window = { status: 'rejected', resetsAt: now / 1000 + 3600, rateLimitType: 'five_hour' };
    assert.equal(limitedBy(window), 'rate_limited');
    assert.equal(
      limitedBy({
        ...window,
        overageStatus: 'rejected',
        overageDisabledReason: 'out_of_credits',
        isUsingOverage: false,
      }),
      'rate_limited',
    );
    assert.equal(limitedBy({ ...window, overageStatus: 'allowed', isUsingOverage: true }), undefined);
    assert.equal(limitedBy({ ...window, overageStatus: 'allowed_warning' }), undefined);
    assert.equal(limitedBy({ ...window, isUsingOverage: true }), undefined);
  });

  it('reads the reset of an attempt its words classed rate limited, stderr first, and no other', () => {
    const anyCommand = { anyCommand: true };
    const tails = { stderr: 'Error: 429 Too Many Requests, try again in 90s', stdout: 'retry after 10s' };
    assert.equal(rateLimitReset('rate_limited', {}, anyCommand, tails, now)?.getTime(), now + 90_000);
    assert.equal(
      rateLimitReset('rate_limited', { resetAt: now + 5_000 }, anyCommand, tails, now)?.getTime(),
      now + 5_000,
    );
    assert.equal(rateLimitReset('overloaded', {}, anyCommand, tails, now), null);
    assert.equal(rateLimitReset('rate_limited', {}, anyCommand, { stderr: 'Error: 429', stdout: '' }, now), null);
    // Whatever the wording: stderr's time of day before stdout's delay.
    const worded = { stderr: 'usage limit reached, resets 4pm (UTC)', stdout: 'Retrying in 2s' };
    assert.equal(
      rateLimitReset('rate_limited', {}, anyCommand, worded, now)?.getTime(),
      Date.UTC(2025, 5, 10, 16, 0, 0),
    );
  });

  it("reads no reset in an agent's transcript, and only the last lines of any command's output", () => {
    // The file the agent read said it; the CLI's own error did not.
    const transcript = { stderr: 'API Error: 429', stdout: '{"type":"user","content":"try again in 3 days"}\n' };
    assert.equal(rateLimitReset('rate_limited', {}, { anyCommand: false }, transcript, now), null);
    const said = (stdout: string) =>
      rateLimitReset('rate_limited', {}, { anyCommand: true }, { stderr: '', stdout }, now);
    assert.equal(said('try again in 3 days\n' + 'working\n'.repeat(10)), null);
    assert.equal(said('working\n'.repeat(10) + 'rate limited, try again in 90s\n')?.getTime(), now + 90_000);
  });
});
