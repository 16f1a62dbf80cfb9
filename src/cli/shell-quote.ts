/** Characters a POSIX shell takes literally in a word. */
const PLAIN = /^[\w@%+=:,./-]+$/;

/** `text` as one word of a POSIX shell command line: as it is when plain, else in single quotes. */
export const shellQuote = (text: string): string => (PLAIN.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`);
