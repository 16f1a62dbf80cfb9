/**
 * Control characters but line feed, tab and carriage return: C0, DEL and C1. On a terminal they are
 * commands (ESC starts sequences that clear the screen, retitle the window, write the clipboard).
 */
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/**
 * Text from the service (an agent's output or error, a prompt's labels) made safe to show on a
 * terminal: each control character becomes visible, in caret notation for C0 and DEL (ESC is `^[`)
 * and as `\u0085`… for C1, so an agent cannot drive the terminal of whoever reads its output.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
    if (code === 0x7f) return '^?';
    return `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Printable, and a carriage return made visible too (`^M`): for text shown as part of the client's own
 * lines (errors, notes, table cells), where one would move the cursor back and let the text after it
 * write over the line.
 */
export function printableLine(text: string): string {
  return printable(text).replace(/\r/g, '^M');
}

/**
 * PrintableLine, and on one line: a line break becomes ` ↵ ` and a tab a space. For text set inside the
 * client's own lines (a table cell, a line of `status`), where a break would split a row in two.
 */
export function printableInline(text: string): string {
  return printableLine(text.replace(/\r?\n/g, ' ↵ ').replace(/\t/g, ' '));
}
