/** Text helpers for the human-readable output of `atelier`. */
import stringWidth from 'string-width';
import { printableInline } from './printable';

export const durationText = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
};

/** From `from` to `to` (or now), as a duration; '-' without a start. */
export const between = (from: string | null | undefined, to?: string | null): string =>
  from ? durationText((to ? Date.parse(to) : Date.now()) - Date.parse(from)) : '-';

/**
 * A task's error, as shown after its status: `class: message`, without the class when it only repeats
 * the status (a cancelled task's class is `cancelled`: `cancelled: task cancelled`, not
 * `cancelled: cancelled: task cancelled`) or when the message already begins with it.
 */
export function errorText(status: string, error: { class: string; message: string | null }): string {
  const message = error.message ?? '';
  if (message === '') return error.class;
  const repeated = error.class === status || message === error.class || message.startsWith(`${error.class}:`);
  return repeated ? message : `${error.class}: ${message}`;
}

export const agoText = (iso: string | null | undefined): string => (iso ? `${between(iso)} ago` : '-');

/**
 * A line cut to fit a terminal `columns` wide, with `…` where it was cut: a line redrawn in place must
 * take one row, or each redraw leaves a row behind. One column is spared (a line that fills the last
 * one makes some terminals wrap); a wide character (CJK, most emoji) takes two columns.
 */
export function fitLine(text: string, columns: number): string {
  const room = Math.max(columns - 1, 2);
  if (stringWidth(text) <= room) return text;
  let cut = '';
  let used = 0;
  for (const char of text) {
    const w = stringWidth(char);
    if (used + w > room - 1) break;
    cut += char;
    used += w;
  }
  return `${cut}…`;
}

/** A plain text table: a header row, then one row per item, columns padded to fit; cells made printable, on one line. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) =>
    r.map((c) => (c === null || c === undefined || c === '' ? '-' : printableInline(String(c)))),
  );
  const widths = headers.map((h, i) => Math.max(stringWidth(h), ...cells.map((r) => stringWidth(r[i] ?? ''))));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - stringWidth(c))))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}
