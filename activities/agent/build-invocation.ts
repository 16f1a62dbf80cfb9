import { ApplicationFailure } from '@temporalio/activity';
import type { AgentProfile } from '../../src/config/agents-file';
import { FAILURE_CLASSES } from '../../workflows/definitions';
import type { Secret } from './secret-redactor';
import { serviceSecretsIn } from './service-secrets';

export interface Invocation {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Written to the agent's stdin, then closed; empty when the prompt travels another way. */
  stdin: string;
  /** With `prompt: file`: the prompt, in the file the agent reads as PROMPT_FILE_PATH. */
  promptFile?: string;
}

/**
 * An invocation with the values that must be masked in the agent's output: its environment's, and the
 * service's own secrets, which the agent is not given but could read (`serviceSecretsIn`).
 */
export interface AgentInvocation extends Invocation {
  secrets: Secret[];
}

export interface InvocationRequest {
  profile: AgentProfile;
  prompt: string;
  model?: string;
  workdir?: string;
  /** The task and attempt the agent runs for, given to it as ATELIER_TASK_ID and ATELIER_ATTEMPT. */
  task: { id: string; attempt: number };
}

const PLACEHOLDER = /\{(prompt|promptFile|model|workdir)\}/g;

/**
 * Where an agent finds its prompt with `prompt: file`: its file descriptor 3, a file the worker wrote
 * and removed from its directory before the agent started (agent-process.ts, infra/spawner). Opening
 * the path opens that file afresh, from its start; only the agent and its children hold it, nothing
 * of it stays on disk once they have exited, whatever becomes of the worker afterwards, and the prompt
 * is neither in the process list nor bound by the kernel's limit on an argument (128 KiB).
 */
const PROMPT_FILE_PATH = '/dev/fd/3';

/**
 * Variables that describe the machine, not credentials. Their values (paths, the user's name, the
 * locale) turn up in ordinary output, which masking them would mangle.
 */
const NON_SECRET_NAMES = new Set([
  'ATELIER_TASK_ID',
  'ATELIER_ATTEMPT',
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TERM',
  'COLORTERM',
  'TMPDIR',
  'TMP',
  'TEMP',
  'PWD',
  'TZ',
  'HOSTNAME',
  'EDITOR',
  'PAGER',
]);
const NON_SECRET_PREFIXES = ['LC_', 'XDG_'];
/** Where a tool keeps its files (`CODEX_HOME`, `GOPATH`…): paths, which its output names all the time. */
const NON_SECRET_SUFFIXES = ['_HOME', '_DIR', 'PATH'];

/** Shorter values ("1", "true", "prod") are too common in ordinary output to be masked everywhere. */
const MIN_SECRET_LENGTH = 8;

/** The values of an agent's environment to mask in its output: every one but the machine's and the short. */
const secretsIn = (env: Record<string, string>): Secret[] =>
  Object.entries(env)
    .filter(
      ([name, value]) =>
        value.length >= MIN_SECRET_LENGTH &&
        !NON_SECRET_NAMES.has(name) &&
        !NON_SECRET_PREFIXES.some((prefix) => name.startsWith(prefix)) &&
        !NON_SECRET_SUFFIXES.some((suffix) => name.endsWith(suffix)),
    )
    .map(([name, value]) => ({ name, value }));

/**
 * Builds the argv and environment of one agent run. Placeholders are replaced inside each argv element
 * on its own, in a single pass, so text substituted in (a prompt containing "{model}", say) is never
 * expanded again; nothing goes through a shell. The secrets are chosen here, on the agent worker, so
 * they never travel in a workflow's input or history.
 * Throws a non-retryable `invalid_input` failure for a model that begins with "-": as an argument of
 * its own it would be read as an option (`--approval-mode=yolo`). The API and the agents file refuse
 * such models already; this holds for workflows started by other means.
 */
export function buildInvocation(req: InvocationRequest, parentEnv: NodeJS.ProcessEnv): AgentInvocation {
  const values = {
    prompt: req.prompt,
    promptFile: PROMPT_FILE_PATH,
    model: req.model ?? req.profile.model ?? '',
    workdir: req.workdir ?? '',
  };
  if (values.model.startsWith('-')) {
    throw ApplicationFailure.nonRetryable(
      `model "${values.model}" begins with "-" and would be read as an option of the agent`,
      FAILURE_CLASSES.invalidInput,
    );
  }
  const [file, ...rest] = req.profile.command.map((arg) =>
    arg.replace(PLACEHOLDER, (_m, name: keyof typeof values) => values[name]),
  );
  const env: Record<string, string> = {};
  for (const name of req.profile.envPassthrough) {
    const value = parentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, req.profile.env);
  // Its hooks and wrappers may file what they do under the task (a log, a trace); set last, so that
  // no passed-through or fixed value can name another task.
  env.ATELIER_TASK_ID = req.task.id;
  env.ATELIER_ATTEMPT = String(req.task.attempt);
  return {
    file: file as string,
    args: rest,
    env,
    stdin: req.profile.prompt === 'stdin' ? req.prompt : '',
    ...(req.profile.prompt === 'file' && { promptFile: req.prompt }),
    secrets: [...secretsIn(env), ...serviceSecretsIn(parentEnv)],
  };
}
