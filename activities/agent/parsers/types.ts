import type { FailureClass } from '../../../workflows/definitions';

export type OutputStream = 'stdout' | 'stderr';

/** How a run ended, as far as the runner (a child process, or an HTTP call) can tell. */
export type RunEnd =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'signalled'; signal: string }
  | { kind: 'timed_out' }
  | { kind: 'stalled' }
  | { kind: 'aborted' }
  /** The agent worker was cut off from Temporal and stopped the run (run-process.ts `CutOff`). */
  | { kind: 'cut_off' }
  | { kind: 'spawn_failed'; code: string; message: string }
  /** An HTTP agent answered with an error status (its body went to stderr). */
  | { kind: 'http_error'; status: number }
  /** An HTTP agent could not be reached or its response broke off. */
  | { kind: 'connection_failed'; message: string };

/** What an agent's output said about its run. Every field is optional: output varies and may break off. */
export interface ParsedOutput {
  /** The agent printed its final record (the result line, the summary): the run reached its end. */
  final: boolean;
  /** The final answer, when the format has one apart from the raw stdout. */
  text?: string;
  /** A failure the output itself reports (an error result, a rate-limit event, …). */
  failureClass?: FailureClass;
  /** The agent's own words about that failure. */
  error?: string;
  /** When the agent said its limit resets (epoch ms). */
  resetAt?: number;
  costUsd?: number;
  /** Every input token of the run, those read from the provider's prompt cache included. */
  inputTokens?: number;
  /** Of `inputTokens`, those read from the prompt cache, which providers bill at a lower rate. */
  cachedInputTokens?: number;
  outputTokens?: number;
  turns?: number;
  sessionId?: string;
}

/**
 * Reads one run's output as it arrives (so nothing depends on how much of stdout is kept) and says at
 * the end what it found. One parser per run; not reused.
 */
export interface OutputParser {
  push(stream: OutputStream, text: string): void;
  finish(end: RunEnd): ParsedOutput;
  /**
   * What this family's exit codes mean beyond 0 and "failed" (Gemini CLI's 41 for auth, say).
   * Consulted after the output itself.
   */
  exitCodeClass?(exitCode: number): FailureClass | undefined;
  /**
   * True when the family's exit code cannot be trusted (Aider exits 0 after an API failure): an exit
   * 0 without a final record is then judged by the output alone.
   */
  readonly hasFinalRecord: boolean;
  /**
   * The program is any command (`text`), not an agent CLI whose error output the parser knows: its
   * stderr is whatever the command printed on its way (a test runner's failures, a build's log), so the
   * built-in patterns read only its last lines (classify-attempt.ts).
   */
  readonly anyCommand?: boolean;
}

/** A parser factory, by `output` name in the agents file. */
export type ParserFactory = () => OutputParser;
