import type { OutputStream } from './parsers/types';

/** A value the agent was given that must not be stored or shown, with the variable that carried it. */
export interface Secret {
  name: string;
  value: string;
}

/** `c` as a JSON `\uXXXX` escape. */
const unicodeEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * A secret as it is printed: as it is, and as a JSON string holds it (quotes, backslashes and line
 * breaks escaped; also non-ASCII, as Python's `json` writes it, and `<`, `>`, `&`, as Go's does), since
 * agents report in JSON lines: a PEM key or a URL with a query, printed by a tool, reaches the output
 * escaped.
 */
function printedForms(secret: Secret): Secret[] {
  const json = JSON.stringify(secret.value).slice(1, -1);
  const go = json.replace(/[<>&\u2028\u2029]/g, unicodeEscape);
  const forms = [secret.value, json, go].flatMap((form) => [form, form.replace(/[\u0080-\uffff]/g, unicodeEscape)]);
  return [...new Set(forms)].map((value) => ({ name: secret.name, value }));
}

/**
 * Masks secrets in an agent's output as it streams, replacing each with `[redacted:NAME]` (no quote or
 * backslash, so a JSON line stays valid) before passing it on to `sink`, in every form it may be
 * printed in (`printedForms`). A secret split across chunks
 * is caught: only the end of a chunk that could begin one is held back, until the next chunk of that
 * stream or `flush`, so live output is not delayed. Where secrets overlap, the leftmost wins, and the
 * longest of those starting there.
 */
export class SecretRedactor {
  /** Longest first, so that of the secrets found at one place the longest is taken. */
  private readonly secrets: readonly Secret[];
  private readonly held: Record<OutputStream, string> = { stdout: '', stderr: '' };

  constructor(
    secrets: readonly Secret[],
    private readonly sink: (stream: OutputStream, text: string) => void,
  ) {
    this.secrets = secrets.flatMap(printedForms).sort((a, b) => b.value.length - a.value.length);
  }

  write(stream: OutputStream, text: string): void {
    this.pass(stream, this.held[stream] + text, false);
  }

  /** Passes on what was held back: the output has ended, so no secret can be completed any more. */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) this.pass(stream, this.held[stream], true);
  }

  private pass(stream: OutputStream, text: string, ended: boolean): void {
    let masked = '';
    let at = 0;
    for (;;) {
      const holdFrom = ended ? text.length : this.mayBeginSecret(text, at);
      const match = this.firstSecret(text, at);
      // A match at or past a held-back start waits too: a longer or earlier secret may still complete there.
      if (!match || match.index >= holdFrom) {
        masked += text.slice(at, holdFrom);
        this.held[stream] = text.slice(holdFrom);
        break;
      }
      masked += `${text.slice(at, match.index)}[redacted:${match.secret.name}]`;
      at = match.index + match.secret.value.length;
    }
    if (masked) this.sink(stream, masked);
  }

  /** The first secret in `text` from `from`: the leftmost, and the longest there. */
  private firstSecret(text: string, from: number): { index: number; secret: Secret } | undefined {
    let first: { index: number; secret: Secret } | undefined;
    for (const secret of this.secrets) {
      const index = text.indexOf(secret.value, from);
      if (index !== -1 && (first === undefined || index < first.index)) first = { index, secret };
    }
    return first;
  }

  /** Where the longest end of `text` (from `from`) that is the beginning of a secret starts; `text.length` if none. */
  private mayBeginSecret(text: string, from: number): number {
    const longest = this.secrets[0]?.value.length ?? 0;
    for (let start = Math.max(from, text.length - longest + 1); start < text.length; start++) {
      const end = text.slice(start);
      if (this.secrets.some((s) => s.value.length > end.length && s.value.startsWith(end))) return start;
    }
    return text.length;
  }
}
