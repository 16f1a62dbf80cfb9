import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { FAILURE_CLASS_NAMES, MAX_CHAIN_LENGTH, POLICY_ACTIONS, type FailureClass } from '../../workflows/definitions';

/** The environment an agent gets when its profile says nothing: enough to find programs and a home. */
/**
 * TZ among them: an agent that names a reset time without a zone ("try again at 3:05 PM") says it in
 * its own zone, which the worker reads it in (parsers/reset-time.ts).
 */
const DEFAULT_ENV_PASSTHROUGH = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'TZ'];

/** Output parsers by name (activities/agent/parsers/); `ollama-http` is called over HTTP, not spawned. */
export const OUTPUT_FORMATS = [
  'text',
  'claude-stream-json',
  'claude-json',
  'codex-jsonl',
  'gemini-json',
  'gemini-stream-json',
  'aider-text',
  'ollama-http',
] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Classes a profile may set a policy or error patterns for (not the outcome `succeeded`). */
const policyClass = z.enum(FAILURE_CLASS_NAMES.filter((c) => c !== 'succeeded') as [FailureClass, ...FailureClass[]]);
const patternClass = z.enum([
  'rate_limited',
  'overloaded',
  'auth',
  'context_overflow',
  'max_turns',
  'bad_output',
  'invalid_input',
  'crash',
]);

const regex = z.string().refine((source) => {
  try {
    new RegExp(source, 'i');
    return true;
  } catch {
    return false;
  }
}, 'must be a valid regular expression');

const policySchema = z
  .object({
    action: z.enum(POLICY_ACTIONS),
    retries: z.number().int().min(0).max(20).optional(),
    backoffSeconds: z.number().min(0).max(3600).optional(),
    waitForReset: z.boolean().optional(),
    maxResetWaitSeconds: z.number().min(0).max(86_400).optional(),
  })
  .strict();

const breakerSchema = z
  .object({
    /** Breaker-class failures (rate_limited, overloaded, auth) within `windowSeconds` that open it. */
    failureThreshold: z.number().int().min(1).max(1000).default(5),
    windowSeconds: z.number().min(1).max(86_400).default(60),
    /** How long it stays open before one probe is let through. */
    cooldownSeconds: z.number().min(0.1).max(86_400).default(60),
  })
  .strict();

/** The placeholder each way of giving the prompt needs in the command; stdin needs none. */
const PROMPT_PLACEHOLDERS = { arg: '{prompt}', file: '{promptFile}' } as const;

const profileSchema = z
  .object({
    command: z.array(z.string().min(1)).min(1, 'must name the program').optional(),
    /**
     * How the agent gets the prompt: on its stdin; as an argument ("{prompt}"); or in a file only it can
     * read, whose path "{promptFile}" names (activities/agent/build-invocation.ts).
     */
    prompt: z.enum(['stdin', 'arg', 'file']).default('stdin'),
    /** Substituted for {model}; one that begins with "-" would be read as an option of the agent. */
    model: z
      .string()
      .min(1)
      .refine((model) => !model.startsWith('-'), 'must not begin with "-": the agent would read it as an option')
      .optional(),
    output: z.enum(OUTPUT_FORMATS).default('text'),
    /** Base URL of the HTTP API (`ollama-http` only), e.g. http://127.0.0.1:11434. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Kill a run that prints nothing for this long (class `stalled`); unset: no idle limit. */
    idleSeconds: z.number().min(0.1).max(86_400).optional(),
    /** Fail a task with a repository and locks that changes files outside them (class `lock_violation`). */
    failOnLockViolations: z.boolean().optional(),
    /** Extra patterns (case-insensitive regular expressions over stdout and stderr) per failure class. */
    errorPatterns: z.partialRecord(patternClass, z.array(regex).min(1)).optional(),
    /** The default fallback chain after this agent, for tasks that name none. */
    fallback: z
      .array(z.string().min(1))
      .max(MAX_CHAIN_LENGTH - 1)
      .optional(),
    /** Cluster-wide limits: runs at once, and starts per minute, across every agent worker. */
    limits: z
      .object({
        maxConcurrent: z.number().int().min(1).max(100_000).optional(),
        startsPerMinute: z.number().int().min(1).max(100_000).optional(),
      })
      .strict()
      .optional(),
    /** Prices in USD per million tokens, for agents that report tokens but no cost (activities/agent/cost.ts). */
    pricing: z
      .object({
        inputPerMillionUsd: z.number().min(0),
        /** Input read from the provider's prompt cache; unset: the input price. */
        cachedInputPerMillionUsd: z.number().min(0).optional(),
        outputPerMillionUsd: z.number().min(0),
      })
      .strict()
      .optional(),
    /** What to do after each class of failure; unset classes keep the defaults (docs/agents.md). */
    policies: z.partialRecord(policyClass, policySchema).optional(),
    breaker: breakerSchema.optional(),
    timeoutSeconds: z.number().int().min(1).max(86_400).default(1800),
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /** Names of environment variables passed through from the worker (API keys go here). */
    envPassthrough: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default(DEFAULT_ENV_PASSTHROUGH),
    /** Fixed variables set for the agent. */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    /**
     * Time between TERM and KILL when the run is stopped; the worker cuts it to what the attempt's
     * start-to-close timeout leaves (activities/agent/fit-to-start-to-close.ts).
     */
    killGraceSeconds: z.number().min(0).max(600).default(5),
  })
  .strict()
  .superRefine((profile, ctx) => {
    if (profile.output === 'ollama-http') {
      if (profile.baseUrl === undefined) {
        ctx.addIssue({ code: 'custom', path: ['baseUrl'], message: 'output: ollama-http needs a baseUrl' });
      }
      if (profile.model === undefined) {
        ctx.addIssue({ code: 'custom', path: ['model'], message: 'output: ollama-http needs a model' });
      }
      if (profile.command !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['command'], message: 'output: ollama-http runs no command' });
      }
      return;
    }
    if (profile.baseUrl !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['baseUrl'], message: 'baseUrl is only used with output: ollama-http' });
    }
    if (profile.command === undefined) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'expected array: the argv of the agent' });
      return;
    }
    for (const [mode, placeholder] of Object.entries(PROMPT_PLACEHOLDERS)) {
      const used = profile.command.some((arg) => arg.includes(placeholder));
      if (profile.prompt === mode && !used) {
        ctx.addIssue({
          code: 'custom',
          path: ['command'],
          message: `prompt: ${mode} needs a "${placeholder}" element`,
        });
      }
      if (profile.prompt !== mode && used) {
        ctx.addIssue({
          code: 'custom',
          path: ['command'],
          message: `"${placeholder}" is only substituted with prompt: ${mode}`,
        });
      }
    }
    // An argument that begins with the prompt is read as an option when the prompt begins with "-"
    // ("--yolo", "- fix the bug"): the prompt must be joined to its option, or follow "--".
    const command = profile.command;
    command.forEach((arg, i) => {
      if (i === 0 || !arg.startsWith('{prompt}') || command[i - 1] === '--') return;
      // After an option, "--" would not do: an option that takes a value takes that "--" for it.
      const option = command[i - 1]?.startsWith('-') ? command[i - 1] : undefined;
      ctx.addIssue({
        code: 'custom',
        path: ['command', i],
        message:
          option === undefined
            ? 'an argument that begins with "{prompt}" would be read as an option when the prompt begins with "-": put "--" before it, or join it to its option ("--message={prompt}")'
            : `an argument that begins with "{prompt}" would be read as an option when the prompt begins with "-": join it to its option ("${option}={prompt}"), or give the prompt on stdin (prompt: stdin)`,
      });
    });
    if (profile.command[0]?.includes('{')) {
      ctx.addIssue({ code: 'custom', path: ['command', 0], message: 'the program itself cannot be a placeholder' });
    }
  })
  // An HTTP agent has no argv; everything else may rely on `command` being there.
  .transform(({ command, ...rest }) => ({ command: command ?? [], ...rest }));

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
    } else if (!Object.hasOwn(file.agents, file.defaultAgent)) {
      ctx.addIssue({ code: 'custom', path: ['defaultAgent'], message: `"${file.defaultAgent}" is not among agents` });
    }
    for (const [name, profile] of Object.entries(file.agents)) {
      const seen = new Set<string>([name]);
      profile.fallback?.forEach((next, i) => {
        const path = ['agents', name, 'fallback', i];
        // Own keys only: `in` would take an object's inherited names (constructor, toString) for agents.
        if (!Object.hasOwn(file.agents, next)) {
          ctx.addIssue({ code: 'custom', path, message: `"${next}" is not among agents` });
        } else if (seen.has(next)) {
          ctx.addIssue({ code: 'custom', path, message: `"${next}" appears twice in the chain` });
        }
        seen.add(next);
      });
    }
  });

export type AgentProfile = z.infer<typeof profileSchema>;
export type AgentsFile = z.infer<typeof agentsFileSchema>;

export class AgentsFileError extends Error {}

/** Parses agents YAML text; `source` names the file in error messages. */
export function parseAgentsFile(text: string, source: string): AgentsFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  // Warnings are refused too: an unknown tag (`KEY: !secret value`) would otherwise be read as the plain
  // text after it, and an unknown directive ignored.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    // Each error by its kind and position alone: yaml's messages quote the line (prettyErrors) or parts
    // of it (a tag, a block scalar's header), and the line may hold a key in a profile's `env`.
    const errors = problems.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `${e.code.toLowerCase().replaceAll('_', ' ')} at line ${line}, column ${col}`;
    });
    throw new AgentsFileError(`${source}: invalid YAML: ${errors.join('; ')}`);
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
