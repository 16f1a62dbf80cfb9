/** The parts of the API's task documents the CLI reads (docs/api.md has them all). */
export interface AttemptDoc {
  number: number;
  agent: string;
  worker: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  failureClass: string | null;
  error: string | null;
}

export interface RunDoc {
  number: number;
  kind: string;
  runId: string | null;
  status: string;
  /** When the run was asked for (its submission, retry or reset); absent from APIs before it was shown. */
  createdAt?: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  error: { class: string; message: string } | null;
  fromRun: number | null;
  attempts: AttemptDoc[];
  links: { temporalUi: string };
}

export interface TaskDoc {
  id: string;
  status: string;
  agent: string;
  model: string | null;
  priority: number;
  labels: Record<string, string>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: { class: string; message: string } | null;
  links: { self: string; logs: string; temporalUi: string };
  prompt?: string;
  maxAttempts?: number;
  workflowId?: string;
  runId?: string | null;
  attempts?: AttemptDoc[];
  runs?: RunDoc[];
  result?: { output: string; exitCode: number } | null;
  /** The git repository the task works in (`--repo`), and the latest commit recorded on its branch. */
  repo?: { path: string; ref: string | null } | null;
  commit?: TaskCommitDoc | null;
}

export interface TaskCommitDoc {
  branch: string;
  baseSha: string;
  sha: string;
  changedFiles: string[];
  /** `git diff --stat` of the branch against its base: a line a file, then the summary. */
  diffstat: string | null;
  lockViolations: string[];
}

export interface SubmittedDoc {
  id: string;
  status: string;
  workflowId: string;
  runId: string;
  links: { self: string; logs: string; temporalUi: string };
}

export const TERMINAL_STATUSES = new Set(['succeeded', 'failed', 'cancelled']);
