import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'pg';
import { WorktreeStore } from '../../src/store/worktree-store';
import { insertTask } from '../support/task-rows';
import { testEnv } from '../support/test-env';

describe('the patches of tasks with a repository', () => {
  let pool: Pool;
  before(() => {
    pool = new Pool({ connectionString: testEnv.databaseUrl, max: 2 });
  });
  after(() => pool.end());

  const commit = {
    branch: 'atelier/t',
    baseSha: 'a'.repeat(40),
    sha: 'b'.repeat(40),
    changedFiles: ['menu.txt'],
    diffstat: ' menu.txt | 1 +',
    lockViolations: [],
  };

  /** What the row holds after `patch` was recorded, and what GET /v1/tasks/:id/diff would serve. */
  async function kept(patch: Buffer): Promise<{ text: string | null; bytes: Buffer | null; served: Buffer | null }> {
    const taskId = await insertTask(pool, { prompt: 'p' });
    const store = new WorktreeStore(pool);
    await store.recordCommit(taskId, commit, patch);
    const row = await pool.query<{ patch: string | null; patch_bytes: Buffer | null }>(
      'SELECT patch, patch_bytes FROM task_diffs WHERE task_id = $1',
      [taskId],
    );
    return {
      text: row.rows[0]?.patch ?? null,
      bytes: row.rows[0]?.patch_bytes ?? null,
      served: (await store.patch(taskId)) ?? null,
    };
  }

  it('keeps a UTF-8 patch as text, where every release reads it', async () => {
    const patch = Buffer.from('+café crème\n', 'utf8');
    assert.deepEqual(await kept(patch), { text: '+café crème\n', bytes: null, served: patch });
  });

  it('keeps a patch that is not UTF-8, or holds NUL, byte for byte', async () => {
    for (const patch of [Buffer.from('+café\n', 'latin1'), Buffer.from('+a\0b\n', 'utf8')]) {
      assert.deepEqual(await kept(patch), { text: null, bytes: patch, served: patch });
    }
  });

  it("tells a patch's size in bytes without reading it, and says when none was kept", async () => {
    const store = new WorktreeStore(pool);
    const sized = async (patch: Buffer | null) => {
      const taskId = await insertTask(pool, { prompt: 'p' });
      await store.recordCommit(taskId, commit, patch);
      return (await store.diffInfo(taskId))?.bytes;
    };
    assert.equal(await sized(Buffer.from('+café\n', 'utf8')), 7);
    assert.equal(await sized(Buffer.from('+café\n', 'latin1')), 6);
    assert.equal(await sized(null), null);
  });
});
