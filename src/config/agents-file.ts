import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';

/** The environment an agent gets when its profile says nothing: enough to find programs and a home. */
const DEFAULT_ENV_PASSTHROUGH = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR'];

const profileSchema = z
  .object({
    command: z.array(z.string().min(1)).min(1, 'must name the program'),
    prompt: z.enum(['stdin', 'arg']).default('stdin'),
    model: z.string().min(1).optional(),
    output: z.enum(['text']).default('text'),
    timeoutSeconds: z.number().int().min(1).max(86_400).default(1800),
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /** Names of environment variables passed through from the worker (API keys go here). */
    envPassthrough: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default(DEFAULT_ENV_PASSTHROUGH),
    /** Fixed variables set for the agent. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /** Time between TERM and KILL when the run is stopped. */
    killGraceSeconds: z.number().min(0).max(600).default(5),
  })
  .strict()
  .superRefine((profile, ctx) => {
    const hasPromptPlaceholder = profile.command.some((arg) => arg.includes('{prompt}'));
    if (profile.prompt === 'arg' && !hasPromptPlaceholder) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'prompt: arg needs a "{prompt}" element' });
    }
    if (profile.prompt === 'stdin' && hasPromptPlaceholder) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: '"{prompt}" is only substituted with prompt: arg' });
    }
    if (profile.command[0]?.includes('{')) {
      ctx.addIssue({ code: 'custom', path: ['command', 0], message: 'the program itself cannot be a placeholder' });
    }
  });

const agentsFileSchema = z
  .object({
    defaultAgent: z.string().min(1),
    agents: z.record(
      z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'agent names are lowercase a-z, 0-9, . _ -'),
      profileSchema,
    ),
  })
  .strict()
  .superRefine((file, ctx) => {
    if (Object.keys(file.agents).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['agents'], message: 'at least one agent is required' });
    } else if (!(file.defaultAgent in file.agents)) {
      ctx.addIssue({ code: 'custom', path: ['defaultAgent'], message: `"${file.defaultAgent}" is not among agents` });
    }
  });

export type AgentProfile = z.infer<typeof profileSchema>;
export type AgentsFile = z.infer<typeof agentsFileSchema>;

export class AgentsFileError extends Error {}

/** Parses agents YAML text; `source` names the file in error messages. */
export function parseAgentsFile(text: string, source: string): AgentsFile {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new AgentsFileError(`${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const parsed = agentsFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    // A bad record key (an agent name) carries its reason in nested issues, not in its own message.
    const reason = (i: z.core.$ZodIssue): string =>
      i.code === 'invalid_key' ? `${i.message}: ${i.issues.map((inner) => inner.message).join(', ')}` : i.message;
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${reason(i)}`);
    throw new AgentsFileError(`${source}: invalid agents file:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads and validates the agents file at `path` (relative paths resolve from the working directory). */
export function loadAgentsFile(path: string): AgentsFile {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new AgentsFileError(`${absolute}: cannot read agents file: ${(err as Error).message}`);
  }
  return parseAgentsFile(text, absolute);
}
