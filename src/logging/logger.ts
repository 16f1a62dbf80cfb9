import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import pino, { type DestinationStream, type Logger } from 'pino';

/** Keys whose values never reach a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.authorization',
  '*.token',
  '*.apiKey',
  '*.password',
];

/**
 * Standard output, written synchronously, that goes quiet when it can no longer be written: a closed
 * terminal (EIO, after a hang-up) or a closed pipe (EPIPE). pino's own destination stops only on EPIPE;
 * on EIO its flush retries every 100 ms for ever, and a process stopping after its terminal closed
 * (an SSH session that dropped) would hang in its first log line, holding its ports and its agents.
 */
function stdoutUntilGone(): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: true });
  destination.on('error', () => {
    destination.write = () => true;
    destination.flushSync = () => undefined;
    destination.end = () => undefined;
  });
  return destination;
}

/** The structured JSON logger every Atelier process writes to stdout with. */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stdoutUntilGone());
}

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Routes the Temporal SDK's logs (workflow `log`, activity `log`, worker) through pino. */
export function toTemporalLogger(logger: Logger): TemporalLogger {
  const at =
    (level: LogLevel) =>
    (message: string, meta?: LogMetadata): void =>
      logger[LEVELS[level]](meta ?? {}, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}
