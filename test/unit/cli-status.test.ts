import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import {
  atelierInProcess as atelier,
  PATIENT,
  sendJson,
  stubApi,
  taskDocument,
  type StubApi,
} from '../support/cli-in-process';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';

/** A succeeded task without a repository, with `extra` on top. */
const taskDoc = (extra: Record<string, unknown>) =>
  taskDocument(ID, { status: 'succeeded', runs: [], repo: null, commit: null, result: null, ...extra });

/** `atelier status`: what it says of a task. */
describe('CLI: status', () => {
  let api: StubApi;
  let answer: Record<string, unknown>;

  before(async () => {
    api = await stubApi((req, res) =>
      req.url === `/v1/tasks/${ID}` ? sendJson(res, 200, answer) : sendJson(res, 404, { message: 'no' }),
    );
  });
  after(() => api.close());

  const status = async (): Promise<string> => {
    const r = await atelier(['status', ID], api.url, { timing: PATIENT });
    assert.equal(r.code, EXIT.ok, r.stderr);
    return r.stdout;
  };

  it("shows a cancelled task's error without its class again", async () => {
    answer = taskDoc({ status: 'cancelled', error: { class: 'cancelled', message: 'task cancelled' } });
    assert.match(await status(), /^status {4}cancelled \(task cancelled\)$/m);
    answer = taskDoc({ status: 'failed', error: { class: 'nonzero_exit', message: 'agent exited with code 3' } });
    assert.match(await status(), /^status {4}failed \(nonzero_exit: agent exited with code 3\)$/m);
  });
});
