#!/usr/bin/env node
// Deterministic stand-in for an agent CLI, used by the tests and benchmarks through the same code path
// as real agents. The prompt (an argument, or stdin) is data; lines starting with "@" are directives,
// run in order:
//   @print TEXT          a line of the answer          @stderr TEXT      a line on stderr
//   @sleep SECONDS       wait                          @exit CODE        exit now with CODE (no final record)
//   @hang                never finish, print nothing   @wait-file FILE   wait until FILE exists
//   @ignore-term         ignore SIGTERM (the runner must escalate to SIGKILL)
//   @fail-until N FILE [FAILURE]  count runs in FILE; while the count is below N, exit 1 (or fail as
//                        FAILURE, see @fail)
//   @spawn-child FILE    start a grandchild that sleeps, write its pid to FILE
//   @escape-child FILE   start a grandchild that sleeps in a session of its own (out of the agent's process
//                        group) holding the agent's stdout and stderr, with an environment of PATH alone,
//                        write its pid to FILE
//   @daemon FILE         start a grandchild that sleeps in a session of its own, its stdio closed (a
//                        daemon), write its pid to FILE
//   @group-child FILE    start a process that sleeps in a process group of its own (still in the
//                        agent's session), its stdio closed, with an environment of PATH alone, its
//                        parent gone at once (an orphan), write its pid to FILE
//   @orphan-daemon FILE  start a process that sleeps in a session of its own, its stdio closed, its
//                        parent gone at once (an orphan), write its pid to FILE
//   @pidfile FILE        write this process's pid to FILE
//   @first-run FILE DIRECTIVE  run DIRECTIVE only in the first run to get here (FILE records that one ran)
//   @echo-env NAME       print NAME=value of an environment variable (or NAME unset)
//   @bytes N             print N bytes of output
// Agent families (--family NAME, or STAND_IN_FAMILY): the run prints what that CLI prints, in its
// format: text (default), claude-stream-json, claude-json, codex-jsonl, gemini-json,
// gemini-stream-json, aider-text. For them:
//   @fail FAILURE [ARG]  end as that CLI does when it fails so: rate-limit [RESET_SECONDS], overloaded,
//                        server-error (a 500, a dropped stream), auth, context-overflow, max-turns,
//                        error-exit0 (reports an error, exits 0), untrusted (Gemini's untrusted workspace),
//                        throttled (Claude: an API 429 while its plan's limit allows the run),
//                        usage-limit (Codex: the plan's limit, with the reset in days and hours, as
//                        older versions say it), usage-limit-at [RESET_EPOCH_SECONDS] (Codex: the plan's
//                        limit, with the reset on the clock, as Codex says it now),
//                        invalid-stream (Gemini: a model turn that came back empty, INVALID_STREAM)
//   @usage IN OUT [CACHED [WRITTEN]]  tokens the final record reports: CACHED of IN read from the prompt
//                        cache (Codex, Gemini; Aider's "cache hit"), WRITTEN of IN written to it (Aider's
//                        "cache write"; with both, Aider puts its cost on a line of its own)
//   @cost USD            its cost (where the CLI has one)
//   @session ID          the session id                   @turns N     the turn count
//   @array               claude-json: print the array form (every message, the result last)
//   @no-final            exit 0 without the final record
//   @overage             Claude: its plan's window is spent (a rejected rate_limit_event) and extra usage
//                        carries the run on (isUsingOverage); the run goes on
//   @when NAME DIRECTIVE run DIRECTIVE only when STAND_IN_NAME is NAME (profiles set it)
// aider-text prints its own lines (not the answer) through Rich, as Aider does: wrapped at COLUMNS, 80
// when unset (no terminal).
// A prompt without directives is the answer, echoed back.
// With STAND_IN_SPAWN_LOG set (a profile passes it through, see test/chaos/agents.yaml), each run first
// appends one JSON line to the file it names: its pid, when the process started (ms since the epoch),
// the prompt exactly as it arrived (argument, option, file or stdin), and the task and attempt the worker
// says it runs for (ATELIER_TASK_ID, ATELIER_ATTEMPT), so a test counts the agent's executions itself.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const readStdin = () => {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
};

// The flags the real CLIs take in headless mode are accepted and ignored; the prompt is the value of
// --prompt or --message (--prompt=VALUE too), else the content of the file --message-file names (as
// aider reads it), else the one argument left, else stdin ("-" as the last argument: stdin too); "--"
// ends the options.
const VALUED = new Set([
  '--family',
  '--output-format',
  '--model',
  '-m',
  '--prompt',
  '--message',
  '--message-file',
  '--approval-mode',
]);
const BOOLEAN = new Set([
  '-p',
  '--print',
  '--verbose',
  'exec',
  '--json',
  '--skip-git-repo-check',
  '--yes-always',
  '--no-pretty',
  '--no-auto-commits',
  '--no-stream',
  '--yolo',
  '-',
]);
let familyName = process.env.STAND_IN_FAMILY ?? 'text';
let prompt;
const positional = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  // "--" ends the options: the rest are positional, whatever they begin with.
  if (arg === '--') {
    positional.push(...argv.slice(i + 1));
    break;
  }
  // A value joined to its option: --message=VALUE.
  const joined = arg.indexOf('=');
  const [name, value] =
    joined > 0 && VALUED.has(arg.slice(0, joined)) ? [arg.slice(0, joined), arg.slice(joined + 1)] : [arg];
  if (VALUED.has(name)) {
    const optionValue = value ?? argv[++i];
    if (name === '--family') familyName = optionValue;
    if (name === '--prompt' || name === '--message') prompt = optionValue;
    if (name === '--message-file') prompt = readFileSync(optionValue, 'utf8');
  } else if (!BOOLEAN.has(arg)) {
    positional.push(arg);
  }
}
prompt ??= positional.length > 0 ? positional[positional.length - 1] : readStdin();
if (process.env.STAND_IN_SPAWN_LOG) {
  // One write of one line (O_APPEND): the lines of agents running at once do not interleave.
  const entry = {
    pid: process.pid,
    startedAt: performance.timeOrigin,
    prompt,
    taskId: process.env.ATELIER_TASK_ID,
    attempt: Number(process.env.ATELIER_ATTEMPT),
  };
  appendFileSync(process.env.STAND_IN_SPAWN_LOG, `${JSON.stringify(entry)}\n`);
}
const lines = prompt.split('\n');
const directives = lines.filter((l) => l.startsWith('@'));
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
// Node writes to a socket (agents get socket pairs) asynchronously, and process.exit drops what it has
// not written yet: the stand-in writes synchronously, so that all it prints arrives, as a real CLI's does.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);
const out = (line) => process.stdout.write(`${line}\n`);
const err = (line) => process.stderr.write(`${line}\n`);
const json = (value) => out(JSON.stringify(value));

const meta = {
  inputTokens: 1200,
  outputTokens: 340,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0.0123,
  /** Set by @cost: a failed run reports it too (it may have spent tokens before failing). */
  costGiven: false,
  session: `stand-in-session-${process.pid}`,
  turns: undefined,
  array: false,
};
const answer = [];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A reset time as Codex says it (format_retry_timestamp): on the local clock, to the minute ("3:05 PM"),
 * with its day when that is not today ("Sep 26th, 2026 3:05 PM").
 */
function codexResetTime(ms) {
  const at = new Date(ms);
  const time = `${at.getHours() % 12 || 12}:${String(at.getMinutes()).padStart(2, '0')} ${at.getHours() < 12 ? 'AM' : 'PM'}`;
  if (at.toDateString() === new Date().toDateString()) return time;
  const day = at.getDate();
  const suffix = (day >= 11 && day <= 13 ? undefined : ['th', 'st', 'nd', 'rd'][day % 10]) ?? 'th';
  return `${MONTHS[at.getMonth()]} ${day}${suffix}, ${at.getFullYear()} ${time}`;
}

/** The words each CLI uses for each failure, from their documented and observed output. */
const WORDS = {
  claude: {
    'rate-limit': { status: 429, text: "You've hit your limit · resets 4pm (UTC)" },
    overloaded: {
      status: 529,
      text: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    },
    'server-error': {
      status: 500,
      text: 'API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server error"}}',
    },
    throttled: {
      status: 429,
      text: 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 30,000 input tokens per minute."}}',
    },
    auth: { status: 401, text: 'Invalid API key · Please run /login' },
    'context-overflow': { status: 400, text: 'Prompt is too long' },
    'error-exit0': { status: null, text: 'Execution error: the model returned an empty response' },
  },
  codex: {
    'rate-limit': (reset = 20) =>
      `stream error: exceeded retry limit, last status: 429 Too Many Requests; Rate limit reached for gpt-5 in organization org-standin on tokens per min (TPM). Please try again in ${reset}s.`,
    'usage-limit': () =>
      "You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) or try again in 2 days 3 hours 5 minutes.",
    'usage-limit-at': (resetsAt = Date.now() / 1000 + 3600) =>
      `You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing), visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at ${codexResetTime(Number(resetsAt) * 1000)}.`,
    overloaded: () =>
      'stream error: unexpected status 503 Service Unavailable: The server is overloaded, please try again later.',
    'server-error': () =>
      'stream disconnected before completion: error sending request for url (https://api.openai.com/v1/responses)',
    auth: () =>
      'unexpected status 401 Unauthorized: Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys.',
    'context-overflow': () =>
      'Your input exceeds the context window of this model. Please adjust your input and try again.',
    'error-exit0': () => 'model produced an invalid tool call and gave up',
  },
  // Gemini CLI's handleError reports an error it throws as {type, message, code}: type its class name,
  // code its exitCode (a FatalError's), else its code, else its status (an HTTP status: 429 for a
  // quota), else 1; and it exits with that code, which the system cuts to its low 8 bits (429: 173).
  gemini: {
    'rate-limit': (reset) => ({
      type: 'TerminalQuotaError',
      code: 429,
      message: `You have exhausted your capacity on this model. Your quota will reset after ${reset}s.`,
    }),
    // A 503 its retries did not get past: Gemini CLI classes it a RetryableQuotaError, which has no
    // code of its own.
    overloaded: () => ({
      type: 'RetryableQuotaError',
      code: 1,
      message: 'The model is overloaded. Please try again later.',
    }),
    'server-error': () => ({
      type: 'ApiError',
      code: 500,
      message:
        '[API Error: {"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}]',
    }),
    auth: () => ({
      type: 'FatalAuthenticationError',
      code: 41,
      message: 'Please set an Auth method in your settings.json or specify GEMINI_API_KEY.',
    }),
    'context-overflow': () => ({
      type: 'ApiError',
      code: 400,
      message: 'The input token count (1100000) exceeds the maximum number of tokens allowed (1048576).',
    }),
    'max-turns': () => ({
      type: 'FatalTurnLimitedError',
      code: 53,
      message:
        'Reached max session turns for this session. Increase the number of turns by specifying maxSessionTurns in settings.json.',
    }),
    untrusted: () => ({
      type: 'FatalUntrustedWorkspaceError',
      code: 55,
      message: 'Gemini CLI is not running in a trusted directory.',
    }),
    // A model turn that came back empty or broken is no error thrown: Gemini CLI reports it as
    // INVALID_STREAM and exits 0. Its advice to /compress is no context overflow.
    'invalid-stream': () => ({
      type: 'INVALID_STREAM',
      message:
        'The model returned reasoning thoughts but no final response text. If your context window is near capacity, try using /compress.',
    }),
    // The same report for a response its safety settings blocked, which a retry would not change.
    'error-exit0': () => ({
      type: 'INVALID_STREAM',
      message: 'The model response was blocked due to safety settings.',
    }),
  },
  aider: {
    // The provider's words name the reset (OpenAI's do); aider's "Retrying in 0.2 seconds..." is its own
    // backoff (0.2 s, doubling), and after its last retry it says the error once more and gives up.
    'rate-limit': (reset) => {
      const said = [
        `litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o in organization org-standin on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200. Please try again in ${reset}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        'The API provider has rate limited you. Try again later or check your quotas.',
      ];
      return [...said, 'Retrying in 0.2 seconds...', ...said];
    },
    overloaded: () => [
      'litellm.InternalServerError: AnthropicException - Overloaded. Handle with `litellm.InternalServerError`.',
      "The API provider's servers are down or overloaded.",
    ],
    auth: () => [
      'litellm.AuthenticationError: AnthropicException - {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
      'The API provider is not able to authenticate you. Check your API key.',
    ],
    'context-overflow': () => [
      'Your estimated chat context of 212,345 tokens exceeds the 200,000 token limit for anthropic/claude-sonnet-4-20250514!',
      'To reduce the chat context:',
      '- Use /drop to remove unneeded files from the chat',
    ],
    'error-exit0': () => ['Unexpected error: litellm.APIError: APIError: AnthropicException - stream ended'],
  },
};

const unsupported = (failure) => {
  err(`stand-in: family ${familyName} has no failure ${failure}`);
  process.exit(2);
};

function claudeFamily(streaming) {
  const messages = [];
  let started = false;
  const emit = (message) => (streaming ? json(message) : messages.push(message));
  const start = () => {
    if (started) return;
    started = true;
    emit({
      type: 'system',
      subtype: 'init',
      session_id: meta.session,
      model: 'stand-in',
      tools: [],
      cwd: process.cwd(),
    });
    // Claude Code reports its plan's limits on every run, also when they allow it: the window then
    // resets hours away, which says nothing about when a failed run may retry.
    emit({
      type: 'rate_limit_event',
      rate_limit_info: {
        status: 'allowed',
        resetsAt: Math.floor(Date.now() / 1000) + 4 * 3600,
        rateLimitType: 'five_hour',
        isUsingOverage: false,
      },
      session_id: meta.session,
    });
  };
  /** A rate_limit_event of a spent window, resetting in `seconds`, with what it says of extra usage. */
  const rejected = (seconds, overage) =>
    emit({
      type: 'rate_limit_event',
      rate_limit_info: {
        status: 'rejected',
        resetsAt: Math.floor(Date.now() / 1000) + seconds,
        rateLimitType: 'five_hour',
        ...overage,
      },
      session_id: meta.session,
    });
  const result = (fields) => {
    start();
    const message = {
      type: 'result',
      subtype: 'success',
      is_error: false,
      duration_ms: 120,
      duration_api_ms: 100,
      num_turns: meta.turns ?? Math.max(answer.length, 1),
      result: answer.join('\n'),
      session_id: meta.session,
      total_cost_usd: meta.costUsd,
      usage: {
        input_tokens: meta.inputTokens - 200,
        cache_creation_input_tokens: 100,
        cache_read_input_tokens: 100,
        output_tokens: meta.outputTokens,
      },
      permission_denials: [],
      ...fields,
    };
    if (streaming) json(message);
    else if (meta.array) json([...messages, message]);
    else json(message);
  };
  return {
    say(text) {
      start();
      answer.push(text);
      emit({
        type: 'assistant',
        message: {
          id: `msg_${answer.length}`,
          type: 'message',
          role: 'assistant',
          model: 'stand-in',
          content: [{ type: 'text', text }],
        },
        session_id: meta.session,
      });
    },
    succeed() {
      result({});
      process.exit(0);
    },
    fail(failure, arg) {
      start();
      if (failure === 'max-turns') {
        result({ subtype: 'error_max_turns', is_error: true, result: undefined });
        process.exit(1);
      }
      const words = WORDS.claude[failure] ?? unsupported(failure);
      if (failure === 'rate-limit') {
        // No extra usage to go on with: the run stops at the window's limit.
        rejected(Number(arg ?? 3600), {
          overageStatus: 'rejected',
          overageDisabledReason: 'org_level_disabled',
          isUsingOverage: false,
        });
      }
      result({
        is_error: true,
        result: words.text,
        api_error_status: words.status,
        total_cost_usd: meta.costGiven ? meta.costUsd : 0,
      });
      process.exit(failure === 'error-exit0' ? 0 : 1);
    },
    overage() {
      start();
      rejected(4 * 3600, { overageStatus: 'allowed', isUsingOverage: true });
    },
    noFinal() {
      start();
      if (!streaming) json(meta.array ? messages : (messages[messages.length - 1] ?? {}));
      process.exit(0);
    },
  };
}

function codexFamily() {
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    json({ type: 'thread.started', thread_id: meta.session });
    json({ type: 'turn.started' });
  };
  return {
    say(text) {
      start();
      answer.push(text);
      json({ type: 'item.completed', item: { id: `item_${answer.length}`, type: 'agent_message', text } });
    },
    succeed() {
      start();
      json({
        type: 'turn.completed',
        usage: {
          input_tokens: meta.inputTokens,
          cached_input_tokens: meta.cachedTokens,
          output_tokens: meta.outputTokens,
        },
      });
      process.exit(0);
    },
    fail(failure, arg) {
      start();
      const words = (WORDS.codex[failure] ?? unsupported(failure))(arg);
      json({ type: 'error', message: words });
      json({ type: 'turn.failed', error: { message: words } });
      process.exit(failure === 'error-exit0' ? 0 : 1);
    },
    noFinal() {
      start();
      process.exit(0);
    },
  };
}

function geminiFamily(streaming) {
  let started = false;
  const now = () => new Date().toISOString();
  const start = () => {
    if (started) return;
    started = true;
    if (streaming) json({ type: 'init', timestamp: now(), session_id: meta.session, model: 'gemini-2.5-pro' });
  };
  const stats = () => ({
    models: {
      'gemini-2.5-pro': {
        api: { totalRequests: meta.turns ?? 1, totalErrors: 0, totalLatencyMs: 100 },
        tokens: {
          prompt: meta.inputTokens,
          candidates: meta.outputTokens,
          total: meta.inputTokens + meta.outputTokens,
          cached: meta.cachedTokens,
          thoughts: 0,
          tool: 0,
        },
      },
    },
    tools: { totalCalls: 0, totalSuccess: 0, totalFail: 0, totalDurationMs: 0, totalDecisions: {}, byName: {} },
    files: { totalLinesAdded: 0, totalLinesRemoved: 0 },
  });
  const streamStats = () => ({
    total_tokens: meta.inputTokens + meta.outputTokens,
    input_tokens: meta.inputTokens,
    output_tokens: meta.outputTokens,
    duration_ms: 100,
    tool_calls: 0,
  });
  return {
    say(text) {
      start();
      answer.push(text);
      if (streaming) {
        json({
          type: 'message',
          timestamp: now(),
          role: 'assistant',
          content: `${answer.length > 1 ? '\n' : ''}${text}`,
          delta: true,
        });
      }
    },
    succeed() {
      start();
      if (streaming) json({ type: 'result', timestamp: now(), status: 'success', stats: streamStats() });
      else json({ session_id: meta.session, response: answer.join('\n'), stats: stats() });
      process.exit(0);
    },
    fail(failure, arg) {
      start();
      const body = (WORDS.gemini[failure] ?? unsupported(failure))(arg ?? 30);
      if (body.type === 'INVALID_STREAM') {
        // stream-json: an error event, then a result with status error and no error object; json: the
        // report on stdout with the turn's text and an error. Either way, exit 0.
        if (streaming) {
          json({ type: 'error', timestamp: now(), severity: 'error', message: body.message });
          json({ type: 'result', timestamp: now(), status: 'error', stats: streamStats() });
        } else {
          out(
            JSON.stringify(
              { session_id: meta.session, response: answer.join('\n'), stats: stats(), error: body },
              null,
              2,
            ),
          );
        }
        process.exit(0);
      }
      // An error thrown: stream-json, a result with it (and no error event before); json, its report on stderr.
      if (streaming) {
        json({
          type: 'result',
          timestamp: now(),
          status: 'error',
          error: { type: body.type, message: body.message },
          stats: streamStats(),
        });
      } else {
        err(JSON.stringify({ session_id: meta.session, error: body }, null, 2));
      }
      process.exit(body.code ?? 1);
    },
    noFinal() {
      start();
      process.exit(0);
    },
  };
}

/**
 * The rows Rich prints `line` in, `COLUMNS` wide (80 without a terminal): wrapped between words, a word
 * longer than a row folded.
 */
function richRows(line) {
  const width = Number(process.env.COLUMNS) || 80;
  const rows = [];
  let row = '';
  for (const word of line.split(' ')) {
    if (row !== '' && row.length + 1 + word.length > width) {
      rows.push(row);
      row = word;
    } else {
      row = row === '' ? word : `${row} ${word}`;
    }
    for (; row.length > width; row = row.slice(width)) rows.push(row.slice(0, width));
  }
  return [...rows, row];
}

function aiderFamily() {
  let started = false;
  // Aider's format_tokens and format_cost.
  const k = (n) => (n < 1000 ? String(n) : n < 10000 ? `${(n / 1000).toFixed(1)}k` : `${Math.round(n / 1000)}k`);
  const usd = (v) =>
    v === 0 ? '0.00' : v >= 0.01 ? v.toFixed(2) : v.toFixed(Math.max(2, 2 - Math.trunc(Math.log10(v))));
  /** Aider's own output (io.tool_output, tool_error): through Rich. */
  const tool = (text) => text.split('\n').flatMap(richRows).forEach(out);
  const start = () => {
    if (started) return;
    started = true;
    tool('Aider v0.86.1');
    tool('Model: anthropic/claude-sonnet-4-20250514 with diff edit format, infinite output');
    tool('Git repo: none');
    tool('Repo-map: disabled');
  };
  return {
    say(text) {
      start();
      answer.push(text);
      out(text);
    },
    succeed() {
      start();
      out('');
      const tokens = [
        `Tokens: ${k(meta.inputTokens)} sent`,
        ...(meta.cacheWriteTokens ? [`${k(meta.cacheWriteTokens)} cache write`] : []),
        ...(meta.cachedTokens ? [`${k(meta.cachedTokens)} cache hit`] : []),
        `${k(meta.outputTokens)} received.`,
      ].join(', ');
      const cost = `Cost: $${usd(meta.costUsd)} message, $${usd(meta.costUsd)} session.`;
      // A call that both wrote and read the cache: the cost on a line of its own.
      tool(`${tokens}${meta.cacheWriteTokens && meta.cachedTokens ? '\n' : ' '}${cost}`);
      process.exit(0);
    },
    fail(failure, arg) {
      start();
      for (const line of (WORDS.aider[failure] ?? unsupported(failure))(arg ?? 20)) tool(line);
      // Aider exits 0 whatever happened to its API calls.
      process.exit(0);
    },
    noFinal() {
      start();
      process.exit(0);
    },
  };
}

function textFamily() {
  return {
    say: out,
    succeed: () => process.exit(0),
    fail: (failure) => unsupported(failure),
    noFinal: () => process.exit(0),
  };
}

const FAMILIES = {
  text: textFamily,
  'claude-stream-json': () => claudeFamily(true),
  'claude-json': () => claudeFamily(false),
  'codex-jsonl': codexFamily,
  'gemini-json': () => geminiFamily(false),
  'gemini-stream-json': () => geminiFamily(true),
  'aider-text': aiderFamily,
};
if (!(familyName in FAMILIES)) {
  err(`stand-in: unknown family ${familyName}`);
  process.exit(2);
}
const family = FAMILIES[familyName]();

if (directives.length === 0) {
  if (familyName === 'text') {
    process.stdout.write(prompt.endsWith('\n') ? prompt : `${prompt}\n`);
    process.exit(0);
  }
  family.say(prompt.replace(/\n$/, ''));
  family.succeed();
}

async function run(line) {
  const [name, ...rest] = line.split(' ');
  const arg = rest.join(' ');
  switch (name) {
    case '@print':
      family.say(arg);
      break;
    case '@stderr':
      err(arg);
      break;
    case '@sleep':
      await sleep(Number(arg));
      break;
    case '@exit':
      process.exit(Number(arg));
      break;
    case '@wait-file':
      while (!existsSync(arg)) await sleep(0.05);
      break;
    case '@hang':
      setInterval(() => undefined, 1 << 30);
      await new Promise(() => undefined);
      break;
    case '@ignore-term':
      process.on('SIGTERM', () => undefined);
      break;
    case '@fail-until': {
      const [n, file, failure, failureArg] = rest;
      let count = 0;
      try {
        count = Number(readFileSync(file, 'utf8')) || 0;
      } catch {
        // first run
      }
      count += 1;
      writeFileSync(file, String(count));
      if (count < Number(n)) {
        err(`failing run ${count} of ${Number(n) - 1}`);
        if (failure) family.fail(failure, failureArg);
        process.exit(1);
      }
      break;
    }
    case '@spawn-child': {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
      writeFileSync(arg, String(child.pid));
      break;
    }
    case '@escape-child': {
      // With only PATH for environment: nothing of the agent's (atelier-spawner's tag) marks it.
      const child = spawn('sleep', ['1000'], {
        stdio: ['ignore', 'inherit', 'inherit'],
        detached: true,
        env: { PATH: process.env.PATH },
      });
      child.unref();
      writeFileSync(arg, String(child.pid));
      break;
    }
    case '@daemon': {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore', detached: true });
      child.unref();
      writeFileSync(arg, String(child.pid));
      break;
    }
    case '@group-child':
      // Node starts no child in a group of its own without a session: bash's job control does. The pid
      // file is written before bash exits.
      spawnSync('bash', ['-c', 'set -m; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$0"', arg], {
        stdio: 'ignore',
        env: { PATH: process.env.PATH },
      });
      break;
    case '@orphan-daemon':
      // setsid(1) in a job that leads no group makes the session itself: the pid is the sleep's.
      spawnSync('bash', ['-c', 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$0"', arg], {
        stdio: 'ignore',
      });
      break;
    case '@pidfile':
      writeFileSync(arg, String(process.pid));
      break;
    case '@first-run':
      if (!existsSync(rest[0])) {
        writeFileSync(rest[0], String(process.pid));
        await run(rest.slice(1).join(' '));
      }
      break;
    case '@echo-env':
      family.say(arg in process.env ? `${arg}=${process.env[arg]}` : `${arg} unset`);
      break;
    case '@bytes':
      process.stdout.write('x'.repeat(Number(arg)));
      break;
    case '@fail':
      family.fail(rest[0], rest[1]);
      break;
    case '@usage':
      meta.inputTokens = Number(rest[0]);
      meta.outputTokens = Number(rest[1]);
      meta.cachedTokens = Number(rest[2] ?? 0);
      meta.cacheWriteTokens = Number(rest[3] ?? 0);
      break;
    case '@cost':
      meta.costUsd = Number(arg);
      meta.costGiven = true;
      break;
    case '@session':
      meta.session = arg;
      break;
    case '@turns':
      meta.turns = Number(arg);
      break;
    case '@array':
      meta.array = true;
      break;
    case '@no-final':
      family.noFinal();
      break;
    case '@overage':
      if (!family.overage) {
        err(`stand-in: family ${familyName} has no @overage`);
        process.exit(2);
      }
      family.overage();
      break;
    case '@when':
      if (process.env.STAND_IN_NAME === rest[0]) await run(rest.slice(1).join(' '));
      break;
    default:
      err(`unknown directive ${name}`);
      process.exit(2);
  }
}

for (const line of directives) await run(line);
family.succeed();
