import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRepo } from './git';
import { openHarness, type Harness, type RunningWorker } from './in-process-workers';
import { uniqueQueue } from './test-env';

/**
 * What a test of repo tasks against in-process workers stands on: the harness, a directory of its own
 * holding a git repository (`repo`), queues of its own, and the workers it starts (pushed onto
 * `workers`); `close` stops them and removes the directory.
 */
export async function openRepoTestBed(name: string) {
  const h: Harness = await openHarness();
  const dir = mkdtempSync(join(tmpdir(), `atelier-${name}-`));
  const repo = join(dir, 'repo');
  initRepo(repo);
  const workers: RunningWorker[] = [];
  return {
    h,
    dir,
    repo,
    queues: { workflowQueue: uniqueQueue(`wf-${name}`), agentQueue: uniqueQueue(`agents-${name}`) },
    workers,
    close: async (): Promise<void> => {
      await Promise.all(workers.map((w) => w.stop()));
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type RepoTestBed = Awaited<ReturnType<typeof openRepoTestBed>>;
