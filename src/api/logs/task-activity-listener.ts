import { EventEmitter } from 'node:events';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import type { AtelierConfig } from '../../config/env';
import { CONFIG } from '../tokens';

/** How often the listening connection is asked whether it still answers, and how long it may take. */
const CHECK_INTERVAL_MS = 30_000;
const CHECK_TIMEOUT_MS = 5000;

/** The channel migration 0003 notifies on, with a task id, for each new log chunk and status change. */
export const TASK_ACTIVITY_CHANNEL = 'atelier_task_activity';

/**
 * One `LISTEN atelier_task_activity` connection per API process, shared by every log follower on it,
 * so output written by any agent worker reaches followers on any API replica at once. It connects on
 * the first follower and reconnects (with backoff) while there are followers. Notifications only wake
 * followers early; they also poll, so a dropped connection costs latency, not output.
 */
@Injectable()
export class TaskActivityListener implements OnApplicationShutdown {
  private readonly logger = new Logger(TaskActivityListener.name);
  private readonly events = new EventEmitter().setMaxListeners(0);
  private client: Client | undefined;
  private connecting: Promise<void> | undefined;
  private retryDelayMs = 500;
  private retryTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(@Inject(CONFIG) private readonly config: AtelierConfig) {}

  /** Whether notifications arrive now: followers may then poll less often. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /**
   * Resolves at the next activity of `taskId`, after `timeoutMs`, or when `signal` aborts, whichever is
   * first. Subscribe before reading, so that activity between the read and the wait is not missed.
   */
  nextActivity(taskId: string, timeoutMs: number, signal: AbortSignal): { wait: Promise<void>; cancel: () => void } {
    this.ensureConnected();
    let done: () => void = () => undefined;
    const wait = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      const onAbort = (): void => done();
      done = () => {
        clearTimeout(timer);
        this.events.off(taskId, done);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.events.once(taskId, done);
      if (signal.aborted) done();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    return { wait, cancel: () => done() };
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    clearInterval(this.checkTimer);
    await this.connecting?.catch(() => undefined);
    await this.client?.end().catch(() => undefined);
  }

  private ensureConnected(): void {
    if (this.client || this.connecting || this.closed || this.retryTimer) return;
    this.connecting = this.connect().finally(() => (this.connecting = undefined));
  }

  private async connect(): Promise<void> {
    const client = new Client({
      connectionString: this.config.DATABASE_URL,
      connectionTimeoutMillis: 5000,
      // A connection a firewall dropped in silence must not pass for a listening one.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: CHECK_TIMEOUT_MS,
    });
    const lost = (err?: Error): void => {
      if (this.client !== client) return;
      this.client = undefined;
      clearInterval(this.checkTimer);
      client.end().catch(() => undefined);
      if (err) this.logger.warn(`task activity listener disconnected: ${err.message}`);
      // Notifications sent meanwhile are lost: every follower looks now, and then every second.
      this.wakeAll();
      this.scheduleReconnect();
    };
    client.on('notification', (msg) => {
      if (msg.channel === TASK_ACTIVITY_CHANNEL && msg.payload) this.events.emit(msg.payload);
    });
    client.on('error', (err) => lost(err));
    client.on('end', () => lost());
    try {
      await client.connect();
      await client.query(`LISTEN ${TASK_ACTIVITY_CHANNEL}`);
      if (this.closed) {
        await client.end();
        return;
      }
      this.client = client;
      this.retryDelayMs = 500;
      this.checkTimer = setInterval(() => {
        client.query('SELECT 1').catch((err: Error) => lost(err));
      }, CHECK_INTERVAL_MS);
      this.checkTimer.unref();
      // What happened while it was away sent notifications nobody heard.
      this.wakeAll();
    } catch (err) {
      client.end().catch(() => undefined);
      this.logger.warn(`task activity listener cannot connect: ${(err as Error).message}`);
      this.scheduleReconnect();
    }
  }

  private wakeAll(): void {
    for (const taskId of this.events.eventNames()) this.events.emit(taskId);
  }

  private scheduleReconnect(): void {
    if (this.closed || this.events.eventNames().length === 0) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.ensureConnected();
    }, delay);
    this.retryTimer.unref();
  }
}
