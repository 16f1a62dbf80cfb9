import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ROOT } from '../support/test-env';
import { writeFormatted } from '../support/write-formatted';
import { markdown } from './report-markdown';
import type { Results, ScenarioResult } from './results';
import { SCENARIOS } from './scenarios';

/** A full run's files, in git. */
const FULL_RUN = {
  results: resolve(ROOT, 'test/bench/results.json'),
  report: resolve(ROOT, 'docs/benchmarks.md'),
};
/** A --quick run's, git-ignored: short versions of the scenarios never replace a full run's figures. */
const QUICK_RUN = {
  results: resolve(ROOT, 'test/artifacts/bench-quick/results.json'),
  report: resolve(ROOT, 'test/artifacts/bench-quick/benchmarks.md'),
};

function readResults(path: string): Results {
  if (!existsSync(path)) return { scenarios: [] };
  return JSON.parse(readFileSync(path, 'utf8')) as Results;
}

/**
 * Merges new results over the stored ones (by scenario name; each keeps the environment it ran in)
 * and rewrites the results and the report: a full run's in git, a --quick run's apart. With no new
 * results (`--report-only`) it regenerates the report from the stored ones.
 */
export async function writeReport(fresh: ScenarioResult[], opts: { quick: boolean }): Promise<void> {
  const files = opts.quick ? QUICK_RUN : FULL_RUN;
  const byName = new Map(readResults(files.results).scenarios.map((s) => [s.scenario.name, s]));
  for (const r of fresh) byName.set(r.scenario.name, r);
  const order = (name: string): number => SCENARIOS.findIndex((s) => s.name === name);
  const results: Results = {
    scenarios: [...byName.values()].sort((a, b) => order(a.scenario.name) - order(b.scenario.name)),
  };
  mkdirSync(dirname(files.results), { recursive: true });
  await writeFormatted(files.results, JSON.stringify(results, null, 2));
  await writeFormatted(files.report, markdown(results, { quick: opts.quick, reportFile: files.report }));
  if (opts.quick) process.stderr.write(`bench: a --quick run's results: ${files.report}\n`);
}
