import { waitFor } from './wait-for';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON when the response says it is JSON; otherwise undefined. */
  json: unknown;
}

export interface RequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is (for bodies that are not valid JSON, or too large). */
  rawBody?: string;
  headers?: Record<string, string>;
  token?: string;
}

/** One HTTP call to the API over the network, as a client would make it. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.rawBody !== undefined) {
    body = options.rawBody;
    headers['content-type'] = 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  Object.assign(headers, options.headers);
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, headers: res.headers, text, json: isJson ? JSON.parse(text) : undefined };
}

/** What POST /v1/tasks answers: the same document the CLI reads. */
export type { SubmittedDoc as Submitted } from '../../src/cli/task-types';
import type { SubmittedDoc as Submitted } from '../../src/cli/task-types';

export interface AttemptView {
  number: number;
  agent: string;
  model: string | null;
  worker: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  failureClass: string | null;
  error: string | null;
  outputBytes: number;
}

export interface TaskView {
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
  prompt: string;
  workflowId: string;
  runId: string | null;
  timeoutSeconds: number;
  maxAttempts: number;
  attempts: AttemptView[];
  result: { output: string; exitCode: number } | null;
}

export interface TaskList {
  items: Omit<TaskView, 'prompt' | 'attempts' | 'result' | 'workflowId' | 'runId' | 'timeoutSeconds' | 'maxAttempts'>[];
  nextCursor: string | null;
}

/** The error body every 4xx carries. */
export interface ErrorBody {
  statusCode: number;
  message: string;
  error?: string;
  fields?: { field: string; problems: string[] }[];
}

/** Submits a task and insists on 201 Created. */
export async function submit(baseUrl: string, body: Record<string, unknown>, token?: string): Promise<Submitted> {
  const res = await call(baseUrl, 'POST', '/v1/tasks', { body, token });
  if (res.status !== 201) throw new Error(`POST /v1/tasks answered ${res.status}: ${res.text}`);
  return res.json as Submitted;
}

export async function getTask(baseUrl: string, id: string, token?: string): Promise<TaskView> {
  const res = await call(baseUrl, 'GET', `/v1/tasks/${id}`, { token });
  if (res.status !== 200) throw new Error(`GET /v1/tasks/${id} answered ${res.status}: ${res.text}`);
  return res.json as TaskView;
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

/** Waits until the task is in a terminal status and returns it (whatever that status is). */
export async function waitForEnd(baseUrl: string, id: string, timeoutMs = 30_000, token?: string): Promise<TaskView> {
  return waitFor(
    `task ${id} to finish`,
    async () => {
      const task = await getTask(baseUrl, id, token);
      return TERMINAL.includes(task.status) ? task : undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
}
