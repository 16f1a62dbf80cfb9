import type { AgentProfile } from '../../src/config/agents-file';

export interface Invocation {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Written to the agent's stdin, then closed; empty when the prompt travels as an argument. */
  stdin: string;
}

export interface InvocationRequest {
  profile: AgentProfile;
  prompt: string;
  model?: string;
  workdir?: string;
}

const PLACEHOLDER = /\{(prompt|model|workdir)\}/g;

/**
 * Builds the argv and environment of one agent run. Placeholders are replaced inside each argv element
 * on its own, in a single pass, so text substituted in (a prompt containing "{model}", say) is never
 * expanded again; nothing goes through a shell.
 */
export function buildInvocation(req: InvocationRequest, parentEnv: NodeJS.ProcessEnv): Invocation {
  const values = {
    prompt: req.prompt,
    model: req.model ?? req.profile.model ?? '',
    workdir: req.workdir ?? '',
  };
  const [file, ...rest] = req.profile.command.map((arg) =>
    arg.replace(PLACEHOLDER, (_m, name: keyof typeof values) => values[name]),
  );
  const env: Record<string, string> = {};
  for (const name of req.profile.envPassthrough) {
    const value = parentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, req.profile.env);
  return { file: file as string, args: rest, env, stdin: req.profile.prompt === 'stdin' ? req.prompt : '' };
}
