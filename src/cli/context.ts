import { ApiClient, API_TIMING, type ApiTiming } from './api-client';
import { printable, printableLine } from './printable';

/** Where the CLI reads and writes; the process's streams, or fakes in tests. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  env: NodeJS.ProcessEnv;
  /** How long to wait on the API: the defaults, or shorter in tests. */
  timing?: ApiTiming;
}

/** Options every command takes. */
export interface GlobalOptions {
  url: string;
  token?: string;
  json?: boolean;
}

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** What a command runs with: the API client, the output mode and the streams. */
export class Cli {
  readonly api: ApiClient;
  readonly json: boolean;
  /** The last of the service's text written to stdout (outData) did not end with a line feed. */
  private dataLineOpen = false;

  constructor(
    readonly io: CliIo,
    readonly options: GlobalOptions,
  ) {
    // A variable set but blank (ATELIER_URL=) is taken as unset.
    this.api = new ApiClient(
      options.url.trim() === '' ? DEFAULT_URL : options.url,
      options.token,
      io.timing ?? API_TIMING,
    );
    this.json = options.json === true;
  }

  /** Writes to stdout as it is. */
  out(text: string): void {
    this.io.stdout.write(text);
  }

  /**
   * Writes what the service holds (an agent's output) to stdout: as it is to a pipe or a file, with
   * its control characters made visible on a terminal (printable).
   */
  outData(text: string): void {
    this.io.stdout.write(this.io.stdout.isTTY === true ? printable(text) : text);
    if (text !== '') this.dataLineOpen = !text.endsWith('\n');
  }

  /**
   * Ends the service's text (outData) once it is all written: on a terminal with a line feed when it
   * did not end with one (an agent that prints `Hello` without one), so that what comes next, the
   * shell's prompt, does not run into it. A pipe or a file gets the bytes the agent wrote, no more.
   */
  endData(): void {
    if (this.dataLineOpen && this.io.stdout.isTTY === true) this.io.stdout.write('\n');
    this.dataLineOpen = false;
  }

  /**
   * A line for the person at the terminal, on stderr, so stdout stays clean for scripts. It may quote
   * the service (a task's error): its control characters are made visible.
   */
  note(line: string): void {
    this.io.stderr.write(`${printableLine(line)}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One JSON document per line, for streams (`logs -f --json`, `top --json`). */
  printJsonLine(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }
}
