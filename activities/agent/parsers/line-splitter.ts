/** Cuts a text stream into lines as chunks arrive; a line split across chunks is joined. */
export class LineSplitter {
  private rest = '';

  /** Lines completed by `text`, without their newline. */
  push(text: string): string[] {
    const parts = (this.rest + text).split('\n');
    this.rest = parts.pop() ?? '';
    return parts.map((line) => line.replace(/\r$/, ''));
  }

  /** The last line, if the stream ended without a newline. */
  end(): string[] {
    const last = this.rest.replace(/\r$/, '');
    this.rest = '';
    return last === '' ? [] : [last];
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

/** Keeps the last `max` characters of a stream, for pattern matching at the end. */
export class Tail {
  private text = '';
  constructor(private readonly max = 64 * 1024) {}
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}
