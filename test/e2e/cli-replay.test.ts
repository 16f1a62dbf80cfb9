import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { agentTaskWorkflow } from '../../workflows';
import { workflowIdForTask, type AgentTaskInput } from '../../workflows/definitions';
import { runCli, shown } from '../support/cli-process';
import {
  openHarness,
  runAgentWorker,
  runWorkflowWorker,
  type Harness,
  type RunningWorker,
} from '../support/in-process-workers';
import { HISTORIES_DIR } from '../support/record-histories';
import { startRewritingProxy } from '../support/rewriting-proxy';
import { startTlsProxy } from '../support/tls-proxy';
import { insertTask } from '../support/task-rows';
import { testEnv, uniqueQueue } from '../support/test-env';

interface ReplayJson {
  replayed: number;
  failed: number;
  unavailable: number;
  results: {
    source: string;
    workflowId?: string;
    runId?: string;
    ok: boolean;
    error?: { kind: string; message: string; event?: { eventId: number; eventType: string; detail?: string } };
  }[];
}

const committed = () =>
  readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(HISTORIES_DIR, f));

/** `atelier replay` over the committed histories, a tampered one, and histories downloaded from Temporal. */
describe('atelier replay', { timeout: 120_000 }, () => {
  let h: Harness;
  let workers: RunningWorker[];
  let tmp: string;
  let workflowId: string;
  const env = () => ({ TEMPORAL_ADDRESS: testEnv.temporalAddress, TEMPORAL_NAMESPACE: testEnv.namespace });

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'atelier-replay-cli-'));
    h = await openHarness();
    const workflowQueue = uniqueQueue('replay-cli-wf');
    const agentQueue = uniqueQueue('replay-cli-agents');
    workers = await Promise.all([runWorkflowWorker(h, workflowQueue), runAgentWorker(h, agentQueue)]);
    // One task that fails once and then succeeds: a history with a retry, a timer and markers.
    const counter = join(tmp, 'runs');
    const taskId = await insertTask(h.pool, { prompt: `@fail-until 2 ${counter}\n@print done`, maxAttempts: 2 });
    workflowId = workflowIdForTask(taskId);
    const input: AgentTaskInput = {
      taskId,
      agent: 'stand-in',
      timeoutSeconds: 30,
      maxAttempts: 2,
      priority: 3,
      agentTaskQueue: agentQueue,
      backoffSeconds: 0.1,
    };
    const handle = await h.client.workflow.start<typeof agentTaskWorkflow>('agentTaskWorkflow', {
      taskQueue: workflowQueue,
      workflowId,
      args: [input],
    });
    await handle.result();
  });

  after(async () => {
    await Promise.all((workers ?? []).map((w) => w.stop()));
    await h?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('replays every committed history against the current workflow code', async () => {
    const files = committed();
    const r = await runCli(['replay', ...files], env());
    assert.equal(r.code, 0, shown(r));
    for (const file of files) assert.ok(r.stdout.includes(`✔ ${file}`), `${file} replayed\n${shown(r)}`);
    assert.match(r.stderr, new RegExp(`${files.length} replayed, 0 failed`));
  });

  it('reports nondeterminism with the event that differs, and exits 5', async () => {
    // As if the workflow had once scheduled its second attempt under another activity name.
    const history = JSON.parse(readFileSync(join(HISTORIES_DIR, 'retries-exhausted.json'), 'utf8')) as {
      events: { eventId: string; activityTaskScheduledEventAttributes?: { activityType: { name: string } } }[];
    };
    const second = history.events.filter((e) => e.activityTaskScheduledEventAttributes)[1];
    assert.ok(second?.activityTaskScheduledEventAttributes);
    second.activityTaskScheduledEventAttributes.activityType.name = 'runAgentUnderAnOldName';
    const tampered = join(tmp, 'tampered.json');
    writeFileSync(tampered, JSON.stringify(history));

    const r = await runCli(['replay', join(HISTORIES_DIR, 'success.json'), tampered], env());
    assert.equal(r.code, 5, shown(r));
    assert.ok(r.stdout.includes(`✔ ${join(HISTORIES_DIR, 'success.json')}`), shown(r));
    assert.ok(
      r.stdout.includes(
        `✖ ${tampered}: nondeterminism at event ${second.eventId} (ActivityTaskScheduled: activity runAgentUnderAnOldName)`,
      ),
      shown(r),
    );
    assert.match(r.stdout, /Nondeterminism error: Activity type of scheduled event 'runAgentUnderAnOldName'/);

    const json = await runCli(['replay', '--json', tampered], env());
    assert.equal(json.code, 5, shown(json));
    const doc = JSON.parse(json.stdout) as ReplayJson;
    assert.equal(doc.failed, 1);
    assert.equal(doc.results[0]?.error?.kind, 'nondeterminism');
    assert.deepEqual(doc.results[0]?.error?.event, {
      eventId: Number(second.eventId),
      eventType: 'ActivityTaskScheduled',
      detail: 'activity runAgentUnderAnOldName',
    });
  });

  it('downloads a history from the server by workflow id, task id or visibility query', async () => {
    const byId = await runCli(['replay', workflowId], env());
    assert.equal(byId.code, 0, shown(byId));
    assert.match(byId.stdout, new RegExp(`✔ temporal:${workflowId} \\(run [0-9a-f-]{36}\\)`));

    const byTaskId = await runCli(['replay', '--json', workflowId.replace(/^task-/, '')], env());
    assert.equal(byTaskId.code, 0, shown(byTaskId));
    const doc = JSON.parse(byTaskId.stdout) as ReplayJson;
    assert.deepEqual(
      doc.results.map((res) => [res.workflowId, res.ok]),
      [[workflowId, true]],
    );

    const byQuery = await runCli(['replay', '--json', '--query', `WorkflowId = '${workflowId}'`], env());
    assert.equal(byQuery.code, 0, shown(byQuery));
    const queried = JSON.parse(byQuery.stdout) as ReplayJson;
    assert.equal(queried.replayed, 1);
    assert.equal(queried.results[0]?.workflowId, workflowId);
    assert.equal(queried.results[0]?.ok, true);

    const unknown = await runCli(['replay', 'task-does-not-exist'], env());
    assert.equal(unknown.code, 1, shown(unknown));
    assert.match(unknown.stdout, /not replayed[\s\S]*cannot download the history/);
  });

  it('reports each history it cannot download, and still replays the others', async () => {
    const file = join(HISTORIES_DIR, 'success.json');
    const query = `WorkflowId = '${workflowId}'`;
    const outcomes = (doc: ReplayJson) => doc.results.map((r) => [r.source, r.ok, r.error?.kind]);

    const down = await runCli(['replay', '--json', file, workflowId, '--query', query], {
      TEMPORAL_ADDRESS: '127.0.0.1:9',
    });
    assert.equal(down.code, 1, shown(down));
    const offline = JSON.parse(down.stdout) as ReplayJson;
    assert.deepEqual(outcomes(offline), [
      [`temporal:${workflowId}`, false, 'unavailable'],
      [`query: ${query}`, false, 'unavailable'],
      [file, true, undefined],
    ]);
    assert.match(offline.results[0]?.error?.message ?? '', /cannot reach Temporal at 127.0.0.1:9/);

    // One download of --query fails: the proxy makes its request name a run that does not exist.
    const { runId } = await h.client.workflow.getHandle(workflowId).describe();
    const proxy = await startRewritingProxy(testEnv.temporalAddress, runId, randomUUID());
    try {
      const r = await runCli(['replay', '--json', file, '--query', query, '--address', proxy.address], env());
      assert.equal(r.code, 1, shown(r));
      const doc = JSON.parse(r.stdout) as ReplayJson;
      assert.deepEqual(outcomes(doc), [
        [`temporal:${workflowId}/${runId}`, false, 'unavailable'],
        [file, true, undefined],
      ]);
      assert.match(doc.results[0]?.error?.message ?? '', /cannot download the history/);
    } finally {
      await proxy.close();
    }
  });

  it('connects as the service does: over TLS with a CA and server name, and with an API key it never shows', async () => {
    const apiKey = 'replay-test-api-key-7f3a';
    const tls = await startTlsProxy(testEnv.temporalAddress);
    try {
      const trusted = {
        ...env(),
        TEMPORAL_TLS_CA_FILE: tls.caFile,
        TEMPORAL_TLS_SERVER_NAME: tls.serverName,
        TEMPORAL_API_KEY: apiKey,
      };
      const r = await runCli(['replay', workflowId, '--address', tls.address], trusted);
      assert.equal(r.code, 0, shown(r));
      assert.match(r.stdout, new RegExp(`✔ temporal:${workflowId} \\(run [0-9a-f-]{36}\\)`));

      // TLS (an API key implies it) to a plain server fails: the failure names neither the key nor its text.
      const plain = await runCli(['replay', workflowId], { ...env(), TEMPORAL_API_KEY: apiKey });
      assert.equal(plain.code, 1, shown(plain));
      assert.match(plain.stdout, /cannot reach Temporal at/);
      const untrusted = await runCli(['replay', workflowId, '--address', tls.address], {
        ...env(),
        TEMPORAL_TLS: 'true',
      });
      assert.equal(untrusted.code, 1, shown(untrusted));
      for (const out of [r, plain, untrusted]) assert.ok(!`${out.stdout}${out.stderr}`.includes(apiKey), shown(out));

      const missing = await runCli(['replay', workflowId], { ...env(), TEMPORAL_TLS_CA_FILE: join(tmp, 'no-ca.pem') });
      assert.equal(missing.code, 1, shown(missing));
      assert.match(missing.stdout, /cannot connect to Temporal: TEMPORAL_TLS_CA_FILE: cannot read/);
    } finally {
      await tls.close();
    }
  });

  it('refuses a --limit that is not a positive integer, as bad usage', async () => {
    for (const limit of ['abc', '0', '-1', '2.5']) {
      const r = await runCli(['replay', '--query', `WorkflowId = '${workflowId}'`, '--limit', limit], env());
      assert.equal(r.code, 2, `--limit ${limit}: ${shown(r)}`);
      assert.match(r.stderr, /--limit must be an integer from 1 to 100000/);
    }
  });
});
