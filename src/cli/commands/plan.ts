import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { ApiError } from '../api-client';
import { EXIT } from '../exit-codes';
import { printableLine } from '../printable';
import { type Action, UsageError } from './action';

const submitPlan: Action = async (cli, file: string) => {
  let plan: unknown;
  try {
    plan = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read the plan ${file}: ${(err as Error).message}`);
  }
  if (typeof plan !== 'object' || plan === null || Array.isArray(plan)) {
    throw new UsageError(`the plan ${file} must be a YAML mapping`);
  }
  let created: { id?: string; status?: string } & Record<string, unknown>;
  try {
    created = await cli.api.json('POST', '/v1/plans', { body: plan });
  } catch (err) {
    if (err instanceof ApiError && err.routeMissing) {
      throw new Error(
        `this Atelier API (${cli.api.baseUrl}) has no plans endpoint: POST /v1/plans answered 404. ` +
          'Plans need a newer server.',
      );
    }
    throw err;
  }
  if (cli.json) cli.printJson(created);
  else {
    if (created.id) cli.out(`${printableLine(created.id)}\n`);
    cli.note(`submitted plan ${created.id ?? ''}${created.status ? ` (${created.status})` : ''}`.trimEnd());
  }
  return EXIT.ok;
};

export function registerPlanCommands(
  program: Command,
  bind: (action: Action) => (...args: unknown[]) => Promise<void>,
) {
  const plan = program.command('plan').description('plans: several tasks submitted together');
  plan
    .command('submit')
    .description('submit a plan file (YAML) to POST /v1/plans')
    .argument('<file>', 'plan.yaml')
    .action(bind(submitPlan));
}
