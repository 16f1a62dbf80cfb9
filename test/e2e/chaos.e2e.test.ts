import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startChaosEnv, type ChaosEnv } from '../chaos/chaos-env';
import {
  badInputCorpus,
  bigRun,
  disruptionWhileRunning,
  metacharacterCorpus,
  type ScenarioReport,
} from '../chaos/scenarios';

const quick = { quick: true };

const assertPassed = (report: ScenarioReport): void =>
  assert.ok(report.ok, `${report.name}: ${report.problems.join('; ')}\n${JSON.stringify(report, null, 2)}`);

/**
 * The short versions of `npm run chaos`, on a PostgreSQL cluster and Temporal dev server of this file's
 * own (so restarting them disturbs no other test): restarts of PostgreSQL and of Temporal while tasks
 * run, the big mixed run at a small scale, and the hostile-input corpora.
 */
describe('chaos (short)', { timeout: 600_000 }, () => {
  let env: ChaosEnv;

  before(async () => {
    env = await startChaosEnv(16);
  });

  after(async () => {
    await env?.stop();
  });

  it('PostgreSQL restarted while tasks run: every task ends once', async () => {
    assertPassed(await disruptionWhileRunning(env, 'postgres-restart', quick));
  });

  it('Temporal restarted while tasks run: every task ends once, and /health/ready comes back', async () => {
    assertPassed(await disruptionWhileRunning(env, 'temporal-restart', quick));
  });

  it('many tasks, resubmissions, killed workers and restarts: exactly one task per key', async () => {
    assertPassed(await bigRun(env, quick));
  });

  it('hostile requests at volume get only 4xx and start nothing', async () => {
    assertPassed(await badInputCorpus(env, quick));
  });

  it('shell syntax in prompts runs as data', async () => {
    assertPassed(await metacharacterCorpus(env, quick));
  });
});
