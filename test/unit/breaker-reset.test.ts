import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '@nestjs/common';
import type { Client } from '@temporalio/client';
import { AgentsService, RESET_WAKE_MS } from '../../src/api/agents/agents.service';
import { loadAgentsFile } from '../../src/config/agents-file';
import type { AgentStatusStore } from '../../src/store/agent-status-store';
import { WAKE_LIMIT, type BreakerResetStore } from '../../src/store/breaker-reset-store';
import { TEST_AGENTS_FILE } from '../support/test-env';

describe('a breaker reset', () => {
  it('answers within its wake deadline when Temporal does not answer the wake signals', async () => {
    let signals = 0;
    // Temporal takes each signal and never answers it: each call ends at its deadline, as gRPC's do.
    const temporal = {
      withDeadline: <R>(deadline: number, fn: () => Promise<R>) => {
        void fn();
        return new Promise<R>((_resolve, reject) =>
          setTimeout(() => reject(new Error('deadline exceeded')), deadline - Date.now()),
        );
      },
      workflow: { getHandle: () => ({ signal: () => new Promise(() => void (signals += 1)) }) },
    } as unknown as Client;
    const breakers = {
      reset: async () => Array.from({ length: WAKE_LIMIT }, (_, i) => `task-${i}`),
    } as unknown as BreakerResetStore;
    const status = { all: async () => ({ now: new Date(), agents: new Map() }) } as unknown as AgentStatusStore;
    const service = new AgentsService(loadAgentsFile(TEST_AGENTS_FILE), temporal, status, breakers);
    const warnings: string[] = [];
    (service as unknown as { logger: Pick<Logger, 'warn'> }).logger = { warn: (m: string) => void warnings.push(m) };

    const start = Date.now();
    const answer = await service.resetBreaker('stand-in');
    const took = Date.now() - start;
    // Without the deadline: four batches of 32 signals, 5 s each, 20 s.
    assert.ok(took < RESET_WAKE_MS + 2_000, `answered after ${took} ms`);
    assert.equal(answer.woken, 0);
    assert.equal(signals, 32, 'the first batch, cut short by the deadline');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /could not wake 100 of 100 task\(s\) waiting for stand-in's breaker/);
  });
});
