import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { History } from '@temporalio/common/lib/proto-utils';
import { isUuid } from '../../../workflows/definitions';
import { downloadHistory, type HistoryClient } from './replay-download';

/** A history to replay, and where it came from. */
export interface Source {
  source: string;
  workflowId: string;
  runId?: string;
  history: History;
}

/** A history that could not be read or downloaded: reported, while the others still replay. */
export interface Unavailable {
  source: string;
  /** Absent for a `--query` that could not be run. */
  workflowId?: string;
  ok: false;
  error: { kind: 'unavailable'; message: string };
}

const unavailable = (source: string, workflowId: string | undefined, message: string): Unavailable => ({
  source,
  ...(workflowId !== undefined && { workflowId }),
  ok: false,
  error: { kind: 'unavailable', message },
});

export interface SourceOptions {
  query?: string;
  limit: number;
  address: string;
  namespace: string;
  /** Where the TLS and API key settings are read. */
  env: NodeJS.ProcessEnv;
  /** Says a line on stderr. */
  note: (line: string) => void;
}

/** The calls of the Temporal workflow client the downloads make. */
export interface WorkflowLister extends HistoryClient {
  list(options: { query: string }): AsyncIterable<{ workflowId: string; runId: string }>;
}

/**
 * The histories of `targets` (files, or workflow and task ids, downloaded) and then those of the
 * workflows `--query` matches, read or downloaded one at a time as the replay takes them, so that a
 * query of thousands of workflows holds one history at a time. What cannot be read or downloaded is
 * added to `failed`, and the others follow.
 */
export async function* historySources(
  targets: string[],
  opts: SourceOptions,
  failed: Unavailable[],
): AsyncGenerator<Source, void> {
  const { historyFromJSON } = await import('@temporalio/common/lib/proto-utils');
  const ids: string[] = [];
  for (const target of targets) {
    if (existsSync(target) || target.endsWith('.json')) {
      const workflowId = basename(target, '.json');
      let history: History;
      try {
        history = historyFromJSON(JSON.parse(readFileSync(target, 'utf8')));
      } catch (err) {
        failed.push(unavailable(target, workflowId, `cannot read ${target}: ${(err as Error).message}`));
        continue;
      }
      yield { source: target, workflowId, history };
    } else {
      // A task id is accepted for its workflow `task-<id>`.
      ids.push(isUuid(target) ? `task-${target}` : target);
    }
  }
  if (ids.length === 0 && opts.query === undefined) return;

  const { Client, Connection } = await import('@temporalio/client');
  // Loaded here, as the client is: the other commands need neither.
  const { ConfigError, loadTemporalSecurity } = await import('../../config/env');
  const { temporalConnectionOptions } = await import('../../temporal/connection-options');
  let connection: Awaited<ReturnType<typeof Connection.connect>>;
  try {
    // As the service connects (TLS, mTLS, API key), to the address of --address. The key is sent, never shown.
    const options = temporalConnectionOptions({ ...loadTemporalSecurity(opts.env), TEMPORAL_ADDRESS: opts.address });
    connection = await Connection.connect({ ...options, connectTimeout: '5 seconds' });
  } catch (err) {
    const message =
      err instanceof ConfigError
        ? `cannot connect to Temporal: ${err.message}`
        : `cannot reach Temporal at ${opts.address}: ${(err as Error).message} (set TEMPORAL_ADDRESS or --address, and TEMPORAL_TLS* or TEMPORAL_API_KEY for TLS)`;
    failed.push(...ids.map((id) => unavailable(`temporal:${id}`, id, message)));
    if (opts.query !== undefined) failed.push(unavailable(`query: ${opts.query}`, undefined, message));
    return;
  }
  try {
    yield* downloads(new Client({ connection, namespace: opts.namespace }).workflow, ids, opts, failed);
  } finally {
    // Also when the replay stops taking histories (it failed).
    await connection.close();
  }
}

/**
 * The histories of the workflows `ids` (their latest runs), then of the runs `query` matches (at most
 * `limit`), each downloaded when the one before has been taken. A failed download is that workflow's only.
 */
export async function* downloads(
  workflow: WorkflowLister,
  ids: string[],
  opts: Pick<SourceOptions, 'query' | 'limit' | 'note'>,
  failed: Unavailable[],
): AsyncGenerator<Source, void> {
  const download = async (source: string, workflowId: string, runId?: string): Promise<Source | undefined> => {
    try {
      return { source, workflowId, ...(await downloadHistory(workflow, workflowId, runId)) };
    } catch (err) {
      failed.push(unavailable(source, workflowId, `cannot download the history: ${(err as Error).message}`));
      return undefined;
    }
  };
  for (const workflowId of ids) {
    const source = await download(`temporal:${workflowId}`, workflowId);
    if (source) yield source;
  }
  if (opts.query === undefined) return;
  let count = 0;
  try {
    for await (const wf of workflow.list({ query: opts.query })) {
      if (count >= opts.limit) {
        opts.note(`replaying the first ${opts.limit} workflows the query matched (--limit)`);
        break;
      }
      count += 1;
      const source = await download(`temporal:${wf.workflowId}/${wf.runId}`, wf.workflowId, wf.runId);
      if (source) yield source;
    }
    if (count === 0) opts.note(`no workflow matched the query: ${opts.query}`);
  } catch (err) {
    failed.push(unavailable(`query: ${opts.query}`, undefined, `cannot list the workflows: ${(err as Error).message}`));
  }
}
