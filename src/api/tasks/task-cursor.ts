import { isUuid } from '../../../workflows/definitions';

/** Opaque list cursors: the (created_at, id) of the last task on a page. */
export const encodeCursor = (ts: string, id: string): string =>
  Buffer.from(JSON.stringify([ts, id])).toString('base64url');

/** PostgreSQL's text form of a timestamptz, e.g. `2025-01-31 12:00:00.123456+00`. */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|[+-](\d{2})(?::?(\d{2}))?)?$/;

/**
 * True for a timestamp PostgreSQL accepts. Checked field by field, because a cursor is client input and
 * a date like 2024-02-31 or 25:00 would otherwise reach the query and fail there as a server error.
 */
function isTimestamp(text: string): boolean {
  const m = TIMESTAMP.exec(text);
  if (!m) return false;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, offsetHours = 0, offsetMinutes = 0] = m
    .slice(1)
    .map((v) => Number(v ?? 0));
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60 &&
    offsetHours <= 15 &&
    offsetMinutes < 60
  );
}

export function decodeCursor(cursor: string): { ts: string; id: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      isTimestamp(value[0]) &&
      isUuid(value[1])
    ) {
      return { ts: value[0], id: value[1] };
    }
  } catch {
    // fall through: not a cursor of ours
  }
  return undefined;
}
