import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '../../src/cli/exit-codes';
import { atelierInProcess as atelier, PATIENT, sendJson, stubApi, type StubApi } from '../support/cli-in-process';

const ID = '6b164171-b029-4597-b729-14ee9d951aec';

/** `--label key=value` of submit and list: what reaches the API. */
describe('CLI: labels', () => {
  let api: StubApi;
  /** Each request: its method, URL and JSON body. */
  let asked: { method?: string; url?: string; body: unknown }[];

  before(async () => {
    api = await stubApi((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        asked.push({ method: req.method, url: req.url, body: text === '' ? undefined : JSON.parse(text) });
        if (req.method === 'POST') sendJson(res, 201, { id: ID, status: 'queued', links: {} });
        else sendJson(res, 200, { items: [], nextCursor: null });
      });
    });
  });
  after(() => api.close());

  it('submit splits a label at its first =: a key may hold :, a value =', async () => {
    asked = [];
    const r = await atelier(['submit', '--label', 'app:tier=web', '--label', 'query=a=b', 'do it'], api.url, {
      timing: PATIENT,
    });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.deepEqual((asked[0]?.body as { labels: unknown }).labels, { 'app:tier': 'web', query: 'a=b' });
  });

  it("list filters as key:value, and refuses a key that holds ':', which the API's filter cannot name", async () => {
    asked = [];
    const r = await atelier(['list', '--label', 'team=a:b'], api.url, { timing: PATIENT });
    assert.equal(r.code, EXIT.ok, r.stderr);
    assert.deepEqual(
      asked.map((a) => a.url),
      [`/v1/tasks?${new URLSearchParams({ label: 'team:a:b' }).toString()}`],
    );
    const refused = await atelier(['list', '--label', 'app:tier=web'], api.url, { timing: PATIENT });
    assert.equal(refused.code, EXIT.usage, refused.stderr);
    assert.match(refused.stderr, /cannot filter on a label whose key holds ':'/);
    assert.equal(asked.length, 1, 'nothing more was asked');
  });
});
