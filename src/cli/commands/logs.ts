import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { ConnectionError, retryAfterSeconds } from '../api-client';
import type { Cli } from '../context';
import { EXIT } from '../exit-codes';
import { GATEWAY_DOWN, MAX_RETRIES, retryDelayMs } from '../retry';
import { readSse } from '../sse';
import { TERMINAL_STATUSES, type TaskDoc } from '../task-types';
import type { Action } from './action';

const POLL_MS = 500;
/** The longest `Retry-After` of a busy or stopping API that `logs -f` waits out, in seconds. */
const LONGEST_RETRY_AFTER_SECONDS = 60;

interface LogEvent {
  run?: number;
  attempt?: number;
  seq?: number;
  stream?: string;
  text?: string;
}

/** The stream said it failed, or sent what cannot be read: not a dropped connection, so not followed again. */
class StreamFailed extends Error {}

/** An event's JSON data; data that is not JSON fails the stream, naming the event (it is never skipped). */
function eventData<T>(event: { event?: string; id?: string; data: string }): T {
  try {
    return JSON.parse(event.data) as T;
  } catch (err) {
    const which = `${event.event ?? 'message'} event${event.id !== undefined ? ` ${event.id}` : ''}`;
    throw new StreamFailed(`the log stream sent a ${which} that is not JSON (${(err as Error).message})`);
  }
}

/** The message of the stream's `error` event; its data as it came, when that is not the JSON expected. */
function errorMessage(data: string): string {
  try {
    return (JSON.parse(data) as { message?: string }).message ?? data;
  } catch {
    return data;
  }
}

const logsPath = (id: string, attempt: number | undefined, follow: boolean): string => {
  const query = new URLSearchParams();
  if (follow) query.set('follow', '1');
  if (attempt !== undefined) query.set('attempt', String(attempt));
  return `/v1/tasks/${encodeURIComponent(id)}/logs${query.size > 0 ? `?${query.toString()}` : ''}`;
};

/**
 * Without the SSE endpoint (an older API): reads the plain log again and again and prints what is new
 * past the offset already printed, until the task has ended. The status is read before the log, so the
 * log read after a terminal status is complete.
 */
async function pollLogs(cli: Cli, id: string, attempt: number | undefined, printed: string): Promise<number> {
  let offset = printed.length;
  for (;;) {
    const task = await cli.api.json<TaskDoc>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    const text = await cli.api.text(logsPath(id, attempt, false));
    if (text.length > offset) {
      const fresh = text.slice(offset);
      if (cli.json) cli.printJsonLine({ event: 'log', text: fresh });
      else cli.outData(fresh);
      offset = text.length;
    }
    if (TERMINAL_STATUSES.has(task.status)) {
      if (cli.json) cli.printJsonLine({ event: 'end', status: task.status });
      cli.endData();
      return EXIT.ok;
    }
    await sleep(POLL_MS);
  }
}

/**
 * Follows a task's output until its run ends: over `GET /v1/tasks/:id/logs?follow=1` (Server-Sent
 * Events) when the API has it, resuming with Last-Event-ID if the stream drops or the API restarts; by
 * polling the plain log otherwise.
 */
async function follow(cli: Cli, id: string, attempt: number | undefined): Promise<number> {
  let lastEventId: string | undefined;
  // Connections lost in a row since one last opened a stream: each waits twice as long before the next
  // try. A stream that opens and closes again (a proxy that cuts long responses while the agent is
  // quiet) is a healthy API: the count starts over whenever one opens.
  let lost = 0;
  // Answers in a row of a replica that stops or has its most followers (503 with Retry-After).
  let turnedAway = 0;
  for (;;) {
    if (lost > 0) {
      if (lost > MAX_RETRIES) throw new Error('the log stream keeps closing before the task ends');
      await sleep(retryDelayMs(lost));
    }
    const path = logsPath(id, attempt, true);
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    let res: Response;
    try {
      res = await cli.api.raw('GET', path, { headers });
    } catch (err) {
      // A restarting API refuses connections for a moment: retry as after a drop. Only a reconnection,
      // though: when the first connection fails, the URL is likely wrong, and the user hears so at once.
      if (lost === 0 || lost >= MAX_RETRIES || !(err instanceof ConnectionError)) throw err;
      lost += 1;
      continue;
    }
    // A replica that stops, or that has its most followers, says when to come back: the first connection too.
    const retryAfter = retryAfterSeconds(res) ?? 0;
    if (res.status === 503 && retryAfter > 0 && turnedAway < MAX_RETRIES) {
      await res.body?.cancel();
      turnedAway += 1;
      const seconds = Math.min(retryAfter, LONGEST_RETRY_AFTER_SECONDS);
      cli.note(`the API is busy: following again in ${seconds} s`);
      await sleep(seconds * 1000);
      continue;
    }
    // Behind a proxy, a restarting API answers 502-504 for a moment: the same as refusing connections.
    if (lost > 0 && lost < MAX_RETRIES && GATEWAY_DOWN.has(res.status)) {
      await res.body?.cancel();
      lost += 1;
      continue;
    }
    const type = res.headers.get('content-type') ?? '';
    if (!(res.ok && type.startsWith('text/event-stream') && res.body)) {
      const first = lost === 0 && lastEventId === undefined;
      // A reconnection answered with something else than the stream (an older replica in the middle of a
      // deploy, a proxy's page while the API restarts) says nothing of what was printed: try again.
      if (!first && res.ok && lost < MAX_RETRIES) {
        await res.body?.cancel();
        lost += 1;
        continue;
      }
      // At once, 200 with plain text: `follow` was ignored; 400: it was refused as unknown. Either way, poll.
      if (first && res.ok && type.startsWith('text/plain')) {
        return pollLogs(cli, id, attempt, await printFirst(cli, await res.text()));
      }
      if (res.status === 400 && first) return pollLogs(cli, id, attempt, '');
      if (res.ok) throw new Error(`the API answered ${type || 'no content type'}, not the log stream`);
      await cli.api.check('GET', path, res);
      return EXIT.error;
    }
    lost = 0;
    turnedAway = 0;
    try {
      for await (const event of readSse(res.body, cli.api.timing.streamIdleMs)) {
        if (event.event === 'log') {
          const chunk = eventData<LogEvent>(event);
          if (cli.json) cli.printJsonLine({ event: 'log', ...chunk });
          else cli.outData(chunk.text ?? '');
        } else if (event.event === 'end') {
          if (cli.json) cli.printJsonLine({ event: 'end', ...eventData<object>(event) });
          cli.endData();
          return EXIT.ok;
        } else if (event.event === 'error') {
          throw new StreamFailed(`the log stream failed: ${errorMessage(event.data)}`);
        }
        // Once printed: a reconnection resumes after it.
        if (event.id !== undefined) lastEventId = event.id;
      }
    } catch (err) {
      if (err instanceof StreamFailed) throw err;
      // The connection dropped: reconnect below and resume after the last chunk printed.
    }
    lost += 1;
  }
}

function printFirst(cli: Cli, text: string): string {
  if (text !== '') {
    if (cli.json) cli.printJsonLine({ event: 'log', text });
    else cli.outData(text);
  }
  return text;
}

const logs: Action = async (cli, id: string, opts: { follow?: boolean; attempt?: number }) => {
  if (opts.follow) return follow(cli, id, opts.attempt);
  const text = await cli.api.text(logsPath(id, opts.attempt, false));
  if (cli.json) cli.printJson({ id, attempt: opts.attempt ?? null, logs: text });
  else {
    cli.outData(text);
    cli.endData();
  }
  return EXIT.ok;
};

export function registerLogsCommand(program: Command, bind: (action: Action) => (...args: unknown[]) => Promise<void>) {
  program
    .command('logs')
    .description("a task's output (stdout and stderr, in order)")
    .argument('<id>', 'task id')
    .option('-f, --follow', 'keep printing new output until the task ends')
    .option('--attempt <n>', 'only this attempt', (v: string) => {
      if (!/^[1-9]\d{0,2}$/.test(v)) throw new InvalidArgumentError('--attempt must be an integer from 1 to 999');
      return Number(v);
    })
    .action(bind(logs));
}
