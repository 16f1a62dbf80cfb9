import { Command, CommanderError, Option } from 'commander';
import { ApiError, ConnectionError } from './api-client';
import { registerLogsCommand } from './commands/logs';
import { registerPlanCommands } from './commands/plan';
import { registerReplayCommand } from './commands/replay';
import { registerTaskCommands } from './commands/tasks';
import { registerTopCommand } from './commands/top';
import { registerWorkersCommand } from './commands/workers';
import { type Action, UsageError } from './commands/action';
import { Cli, DEFAULT_URL, type CliIo, type GlobalOptions } from './context';
import { EXIT } from './exit-codes';
import { printableLine } from './printable';
import { WaitFailed } from './wait';

const VERSION = '0.1.0';
const TOKEN_ENV = 'ATELIER_TOKEN';

/** What to do about an API error, when the answer says: when to try again, or that a token is wanted. */
function hintFor(err: ApiError): string {
  if (err.retryAfterSeconds !== undefined) {
    return /try again/i.test(err.message) ? '' : ` (try again in ${err.retryAfterSeconds} s)`;
  }
  if (err.status === 401) return ` (give a token with --token or ${TOKEN_ENV})`;
  return '';
}

/** The message for an error, as the CLI shows it on stderr. */
function describe(err: unknown): string {
  if (err instanceof WaitFailed) {
    return `${describe(err.cause)}\n${err.message}: do not submit it again (atelier status ${err.taskId})`;
  }
  if (err instanceof ApiError) {
    const fields = (err.body as { fields?: { field: string; problems: string[] }[] } | undefined)?.fields;
    // The message of a 400 lists its fields too: shown once, a field a line.
    if (fields?.length) {
      const lines = fields.map((f) => `  ${f.field}: ${f.problems.join('; ')}`).join('\n');
      return `${err.method} ${err.path} answered ${err.status}:\n${lines}`;
    }
    return `${err.method} ${err.path} answered ${err.status}: ${err.message}${hintFor(err)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * `atelier`: the command-line client of the Atelier REST API (and of Temporal, for `replay`).
 * Returns the exit code; nothing here calls process.exit, so output is never cut short.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('atelier')
    .description('Run and watch AI coding agent tasks on Atelier.')
    .version(VERSION)
    .addOption(new Option('--url <url>', 'Atelier API base URL').env('ATELIER_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <token>', 'bearer token for the API').env(TOKEN_ENV))
    .option('--json', 'machine-readable JSON output')
    .showHelpAfterError('(atelier --help lists the commands)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
  // Commander reads options' variables from process.env; tests hand in their own environment: its
  // values are set here, before the command line's own. Not as defaults: --help prints those, and a
  // variable may hold what is not meant to be shown (a token set in the wrong one). Not the token at
  // all: it is read from the environment where it is used (bind, below).
  for (const option of program.options) {
    const value = option.envVar && option.envVar !== TOKEN_ENV ? io.env[option.envVar] : undefined;
    if (value !== undefined) program.setOptionValueWithSource(option.attributeName(), value, 'env');
  }

  const bind =
    (action: Action) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      const options = command.optsWithGlobals<GlobalOptions>();
      const cli = new Cli(io, { ...options, token: options.token ?? io.env[TOKEN_ENV] });
      exitCode = await action(cli, ...args.slice(0, -1));
    };

  registerTaskCommands(program, bind);
  registerLogsCommand(program, bind);
  registerPlanCommands(program, bind);
  registerWorkersCommand(program, bind);
  registerReplayCommand(program, bind, io.env);
  registerTopCommand(program, bind);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end "with an error" of exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    // The message may quote the server (an error's text, a proxy's page title): made safe for a terminal.
    io.stderr.write(`atelier: ${printableLine(describe(err))}\n`);
    if (err instanceof UsageError) return EXIT.usage;
    if (err instanceof WaitFailed) return EXIT.waitFailed;
    if (err instanceof ApiError || err instanceof ConnectionError) return EXIT.error;
    return EXIT.error;
  }
}
