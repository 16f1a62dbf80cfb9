/**
 * A line longer than this (in UTF-16 code units) is no record any parser reads: the longest records,
 * a final answer or a tool's output, stay far below it. Such a line is dropped whole, and no more of
 * it than this is ever held.
 */
export const MAX_LINE_CHARS = 1024 * 1024;

/** Cuts a text stream into lines as chunks arrive; a line split across chunks is joined. */
export class LineSplitter {
  /** The pieces of the line under way: only its newline has yet to come. */
  private pieces: string[] = [];
  private held = 0;
  /** The line under way passed MAX_LINE_CHARS: the rest of it is dropped, up to its newline. */
  private tooLong = false;

  /** Lines completed by `text`, without their newline; a line over MAX_LINE_CHARS is left out. */
  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    // Only the new text is searched: what is held has no newline, so each character is looked at once.
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      this.hold(text.slice(start, newline));
      const line = this.take();
      if (line !== undefined) lines.push(line);
      start = newline + 1;
    }
    this.hold(text.slice(start));
    return lines;
  }

  /** The last line, if the stream ended without a newline. */
  end(): string[] {
    const last = this.take();
    return last === undefined || last === '' ? [] : [last];
  }

  /** Characters held for the line under way (at most MAX_LINE_CHARS). */
  get pendingChars(): number {
    return this.held;
  }

  private hold(piece: string): void {
    if (this.tooLong || piece === '') return;
    if (this.held + piece.length > MAX_LINE_CHARS) {
      this.tooLong = true;
      this.pieces = [];
      this.held = 0;
      return;
    }
    this.pieces.push(piece);
    this.held += piece.length;
  }

  /** The line under way, ended (undefined when it was too long), and a fresh start. */
  private take(): string | undefined {
    const line = this.tooLong ? undefined : this.pieces.join('').replace(/\r$/, '');
    this.pieces = [];
    this.held = 0;
    this.tooLong = false;
    return line;
  }
}

/** Parses a line as a JSON object; anything else (progress text, a broken line) is undefined. */
export function jsonObject(line: string): Record<string, unknown> | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(trimmed);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Small chunks are joined into blocks of about this size, so a long tail is a few hundred blocks. */
const TAIL_BLOCK_CHARS = 64 * 1024;

/** Keeps the last `max` characters of a stream, for pattern matching (or a final record) at the end. */
export class Tail {
  /** The stream's end in blocks, cut to `max` only when read: a push costs its chunk, not the tail. */
  private blocks: string[] = [];
  private length = 0;
  constructor(private readonly max = 64 * 1024) {}
  push(chunk: string): void {
    const last = this.blocks.length - 1;
    const lastBlock = this.blocks[last];
    if (lastBlock !== undefined && lastBlock.length < TAIL_BLOCK_CHARS) this.blocks[last] = lastBlock + chunk;
    else this.blocks.push(chunk);
    this.length += chunk.length;
    let first = this.blocks[0];
    while (first !== undefined && this.length - first.length >= this.max) {
      this.blocks.shift();
      this.length -= first.length;
      first = this.blocks[0];
    }
  }
  toString(): string {
    return this.blocks.join('').slice(-this.max);
  }
}
