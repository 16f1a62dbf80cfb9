import { Readable } from 'node:stream';
import {
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  ServiceUnavailableException,
  StreamableFile,
} from '@nestjs/common';
import type { Response } from 'express';
import type { Pool } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { LogFollowStore, type LogCursor, type LogPage, type PageBound } from '../../store/log-follow-store';
import { refuseWhileStopping } from '../http/refuse-while-stopping';
import { badFields } from '../http/validation';
import { CONFIG, PG_POOL } from '../tokens';
import { TaskActivityListener } from './task-activity-listener';
import { isUuid } from '../../../workflows/definitions';

/** A follower re-reads at least this often, even when no notification arrives. */
const POLL_MS = 1000;
/**
 * As often while this replica listens for notifications (new chunks and status changes wake followers
 * at once), so that hundreds of idle followers do not keep the API's pool busy. Not for a follower of
 * one attempt: an attempt's end sends no notification.
 */
const LISTENING_POLL_MS = 10_000;
/** A comment line at least this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
/** A timer may fire a little early: a keep-alive this close to due is sent. */
const KEEPALIVE_SLACK_MS = 100;
/**
 * What one query reads: a backlog is sent a page at a time, and each open stream or download holds about
 * a page (or one chunk, if larger: an agent's output piled up while the database was away). Bounded in
 * bytes as well, as chunks run from a line to megabytes: 1000 followers of a large log hold some 256 MB.
 */
export const PAGE: PageBound = { rows: 200, bytes: 256 * 1024 };
/** What a browser's EventSource waits before it reconnects, in ms (sent as the stream's `retry:`). */
const RECONNECT_MS = 1000;
/** What a follower or download turned away because this replica has its most waits before it tries again, in seconds. */
const FULL_RETRY_AFTER_SECONDS = 10;
/**
 * How long the answers still open when the API stops (a plain log being downloaded, a stream whose
 * client stopped reading) get to end, before their connections are cut: else they would hold the HTTP
 * server open.
 */
const SHUTDOWN_GRACE_MS = 5000;
/** How long a follower waits out an unreachable database before it ends its stream with an error. */
const DB_PATIENCE_MS = 30_000;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
/** Event ids are `<run>.<attempt>.<seq>`: the position of the chunk just sent. */
const EVENT_ID = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})$/;

export interface FollowOptions {
  attempt?: number;
  /** The run to follow; default: the task's current run. */
  run?: number;
  /** The `Last-Event-ID` header of a reconnecting client: the stream resumes after that chunk. */
  lastEventId?: string;
}

/**
 * Turns one answer more away with 503 and `Retry-After` once this replica has `max` of its kind open:
 * each holds a page of the log, and a pool connection whenever it reads.
 */
function refuseWhenFull(
  open: number,
  max: number,
  res: Response,
  what: { setting: string; open: string; retry: string },
): void {
  if (open < max) return;
  res.setHeader('Retry-After', String(FULL_RETRY_AFTER_SECONDS));
  throw new ServiceUnavailableException(
    `this API replica has ${max} ${what.open} already (${what.setting}); ${what.retry} again in a moment`,
  );
}

/** One Server-Sent Event; `data` is JSON, so a chunk's newlines never break the framing. */
const frame = (event: string, data: unknown, id?: string): string =>
  `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * `GET /v1/tasks/:id/logs?follow=1`: the agent's output as Server-Sent Events, the stored chunks first,
 * then new ones as agent workers write them, until the run ends. Everything comes from PostgreSQL (a
 * cursor over the chunk sequence, woken by LISTEN/NOTIFY and by polling), so any API replica can serve
 * any follower, and a client that reconnects with `Last-Event-ID` continues where it was, on any replica.
 */
@Injectable()
export class LogStreamService {
  private readonly logger = new Logger(LogStreamService.name);
  private readonly store: LogFollowStore;
  /** One per open stream, with its response: aborting it ends the stream. */
  private readonly streams = new Map<AbortController, Response>();
  /** The responses of plain logs being sent. */
  private readonly downloads = new Set<Response>();
  /** Called once no stream or download is open, while the API stops. */
  private allEnded?: () => void;
  /** Set once the API stops: a stream opened after its open ones were ended would hold the server open. */
  private stopping = false;

  constructor(
    @Inject(PG_POOL) pool: Pool,
    @Inject(CONFIG) private readonly config: AtelierConfig,
    private readonly listener: TaskActivityListener,
  ) {
    this.store = new LogFollowStore(pool);
  }

  /** Followers connected to this replica now. */
  get active(): number {
    return this.streams.size;
  }

  /**
   * Ends the open streams before the HTTP server closes, which waits for open connections; followers
   * reconnect (`Last-Event-ID`) to another replica, or to this one once it is back. A stream waits for
   * its client to read what it wrote before it can end, and a download goes on to its end: what is
   * still open after SHUTDOWN_GRACE_MS has its connection cut (a download cut short fails, rather than
   * look complete).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    for (const abort of this.streams.keys()) abort.abort();
    if (this.streams.size + this.downloads.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
        this.allEnded = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const res of [...this.streams.values(), ...this.downloads]) res.destroy();
  }

  /** Forgets an answer that ended; tells a stop waiting for the last one. */
  private ended(forget: () => void): void {
    forget();
    if (this.streams.size + this.downloads.size === 0) this.allEnded?.();
  }

  /**
   * `GET /v1/tasks/:id/logs`: the current run's output so far as plain text, read and sent a page of
   * chunks at a time, so a long log (up to 64 Mi characters an attempt) is never held whole.
   */
  async text(taskId: string, attempt: number | undefined, res: Response): Promise<StreamableFile> {
    // One that began after the open ones were given their grace would hold the server open.
    refuseWhileStopping(this.stopping, res, 'download the log');
    refuseWhenFull(this.downloads.size, this.config.ATELIER_LOG_DOWNLOADS_MAX, res, {
      setting: 'ATELIER_LOG_DOWNLOADS_MAX',
      open: 'log downloads under way',
      retry: 'download the log',
    });
    // Counted from here, its first page's read included; a client already gone has had its 'close'.
    if (!res.destroyed) {
      this.downloads.add(res);
      res.once('close', () => this.ended(() => this.downloads.delete(res)));
    }
    const state = isUuid(taskId) ? await this.store.taskState(taskId) : undefined;
    if (!state) throw new NotFoundException(`no task ${taskId}`);
    const { store } = this;
    const next = (after: LogCursor) => store.chunksAfter(taskId, state.currentRun, after, attempt, PAGE);
    // Read before the answer starts: a database away then is a 503, not a cut stream.
    const first = await next({ attempt: 0, seq: -1 });
    refuseWhileStopping(this.stopping, res, 'download the log'); // it may have begun to stop meanwhile
    async function* chunks(): AsyncGenerator<string> {
      for (let page = first; ;) {
        for (const chunk of page.chunks) yield chunk.data;
        const last = page.chunks.at(-1);
        if (last === undefined || !page.more) return;
        page = await next({ attempt: last.attempt, seq: last.seq });
      }
    }
    return new StreamableFile(Readable.from(chunks()), { type: 'text/plain; charset=utf-8' });
  }

  async follow(id: string, opts: FollowOptions, res: Response): Promise<StreamableFile> {
    refuseWhileStopping(this.stopping, res, 'follow');
    // As notifications name it (PostgreSQL writes a uuid in lower case): else none would wake this stream.
    const taskId = id.toLowerCase();
    const state = isUuid(taskId) ? await this.store.taskState(taskId) : undefined;
    if (!state) throw new NotFoundException(`no task ${taskId}`);
    let run = opts.run ?? state.currentRun;
    let cursor: LogCursor = { attempt: 0, seq: -1 };
    if (opts.lastEventId !== undefined && opts.lastEventId.trim() !== '') {
      const m = EVENT_ID.exec(opts.lastEventId.trim());
      const at = m && { run: Number(m[1]), cursor: { attempt: Number(m[2]), seq: Number(m[3]) } };
      // Every id the stream sends is a stored chunk's: any other (of a run the task never had, say) is
      // no place to resume from.
      if (!at || !(await this.store.hasChunk(taskId, at.run, at.cursor))) {
        throw badFields([
          { field: 'Last-Event-ID', problems: ['Last-Event-ID must be the id of an event this stream sent'] },
        ]);
      }
      ({ run, cursor } = at);
    }

    // Asked again: the API may have begun to stop while the reads above waited.
    refuseWhileStopping(this.stopping, res, 'follow');
    refuseWhenFull(this.streams.size, this.config.ATELIER_LOG_FOLLOWERS_MAX, res, {
      setting: 'ATELIER_LOG_FOLLOWERS_MAX',
      open: 'log followers',
      retry: 'follow',
    });
    const abort = new AbortController();
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    // Reverse proxies (nginx) must pass events on as they come, not buffer them.
    res.setHeader('X-Accel-Buffering', 'no');
    // Counted until its answer closes, not its frames: frames that ended (a stopping API's abort) may
    // still be on their way to a client that stopped reading, and the stop cuts that answer too. A
    // client already gone has had its 'close'.
    if (res.destroyed) abort.abort();
    else {
      this.streams.set(abort, res);
      res.once('close', () => {
        abort.abort();
        this.ended(() => this.streams.delete(abort));
      });
    }
    const stream = Readable.from(this.frames(taskId, run, cursor, opts.attempt, abort.signal));
    stream.once('close', () => abort.abort());
    return new StreamableFile(stream);
  }

  private async *frames(
    taskId: string,
    run: number,
    start: LogCursor,
    attempt: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<string> {
    let cursor = start;
    let lastSent = Date.now();
    let failingSince: number | undefined;
    const keepAliveIn = (): number => KEEPALIVE_MS - (Date.now() - lastSent);
    yield `retry: ${RECONNECT_MS}\n: following task ${taskId}, run ${run}\n\n`;
    while (!signal.aborted) {
      // Wait registration first, then the reads: activity in between still wakes the next wait, which
      // ends by the next keep-alive's time at the latest.
      const pollMs = attempt === undefined && this.listener.listening ? LISTENING_POLL_MS : POLL_MS;
      const next = this.listener.nextActivity(taskId, Math.max(1, Math.min(pollMs, keepAliveIn())), signal);
      try {
        let state: Awaited<ReturnType<LogFollowStore['taskState']>>;
        let attemptEnded = false;
        let page: LogPage;
        try {
          // Status before chunks: a worker writes all its output before the task's (or attempt's) end
          // is recorded, so a run or attempt seen ended here has every chunk in place for the read below.
          state = await this.store.taskState(taskId);
          if (attempt !== undefined) attemptEnded = await this.store.attemptEnded(taskId, run, attempt);
          page = await this.store.chunksAfter(taskId, run, cursor, attempt, PAGE);
          failingSince = undefined;
        } catch (err) {
          // The database is away: keep the client, try again, and give up only after a while.
          failingSince ??= Date.now();
          if (Date.now() - failingSince > DB_PATIENCE_MS) {
            // The database's own words (its host, its user) stay in the API's log.
            this.logger.warn(`stopped following task ${taskId}'s logs: ${(err as Error).message}`);
            yield frame('error', { message: "cannot read the task's logs: the database is unavailable" });
            return;
          }
          if (keepAliveIn() <= KEEPALIVE_SLACK_MS) {
            yield ': keep-alive\n\n';
            lastSent = Date.now();
          }
          await next.wait;
          continue;
        }
        for (const c of page.chunks) {
          cursor = { attempt: c.attempt, seq: c.seq };
          yield frame(
            'log',
            { run: c.run, attempt: c.attempt, seq: c.seq, stream: c.stream, text: c.data },
            `${c.run}.${c.attempt}.${c.seq}`,
          );
          lastSent = Date.now();
        }
        if (page.more) continue;
        const ended = !state || state.currentRun !== run || TERMINAL.has(state.status);
        if (ended) {
          const status = !state ? 'deleted' : state.currentRun !== run ? 'superseded' : state.status;
          yield frame('end', { status, run });
          return;
        }
        if (attemptEnded) {
          yield frame('end', { status: 'attempt_ended', run, attempt });
          return;
        }
        if (keepAliveIn() <= KEEPALIVE_SLACK_MS) {
          yield ': keep-alive\n\n';
          lastSent = Date.now();
        }
        await next.wait;
      } finally {
        next.cancel();
      }
    }
  }
}
