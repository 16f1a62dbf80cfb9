import { tmpdir } from 'node:os';
import type { Logger } from 'pino';
import { Client } from '@temporalio/client';
import { join } from 'node:path';
import {
  createAgentActivities,
  createWorktreeActivities,
  taskWorkSaver,
  type WorktreeActivities,
} from '../../activities';
import { gitVia, type Git } from '../../activities/git/git';
import { loadAgentsFile } from '../config/agents-file';
import { loadConfig, type AtelierConfig } from '../config/env';
import { AdmissionStore } from '../store/admission-store';
import { AttemptStore } from '../store/attempt-store';
import { AttemptUsageStore } from '../store/attempt-usage-store';
import { EndedTaskStore } from '../store/ended-task-store';
import { WorktreeStore } from '../store/worktree-store';
import { WorkerStore } from '../store/worker-store';
import { runMain } from '../process/run-main';
import { agentHostGone } from './agent-host-gone';
import { agentProcessEnded, attemptArrivedAt } from './agent-slot-interceptor';
import { agentSlots } from './agent-slots';
import { agentSpawn, spawnerBinary, type AgentSpawning } from './agent-spawn';
import { createAgentWorkers } from './agent-workers';
import { breakerWaiterWaker } from './breaker-waiter-waker';
import { runWorkerProcess, type WorkerContext } from './run-worker-process';
import { slotWaiterWaker } from './slot-waiter-waker';
import { TemporalContact } from './temporal-contact';
import { workerQueueFor } from './worker-queue';
import { WorktreeJanitor } from './worktree-janitor';

/**
 * Agent worker: runs agent CLIs from the agent task queue and its own, at most `ATELIER_AGENT_SLOTS` at
 * once over both (or as many as CPU and memory allow, with `auto`). It heartbeats every 2 s and flushes
 * heartbeats at most a second apart, so a cancel reaches a running or waiting agent within about 2 s.
 */
const HEARTBEAT_INTERVAL_MS = 2000;
const JANITOR_INTERVAL_MS = 5 * 60_000;

const worktreeRootOf = (config: AtelierConfig): string =>
  config.ATELIER_WORKTREE_ROOT ?? join(tmpdir(), 'atelier-worktrees');

/** One per process: stops the agents when the process is cut off from Temporal. */
let contact: TemporalContact | undefined;
const contactOf = ({ connection, logger }: Pick<WorkerContext, 'connection' | 'logger'>): TemporalContact =>
  (contact ??= new TemporalContact(
    (deadline) => connection.withDeadline(deadline, () => connection.workflowService.getSystemInfo({})),
    (event, silentMs) =>
      event === 'cut_off'
        ? logger.error(
            { silentMs },
            'cut off from Temporal: stopping the running agents before it runs their attempts elsewhere',
          )
        : logger.warn({ silentMs }, 'in contact with Temporal again'),
  ));

runMain('agent-worker', () => {
  // A bad agents file or spawner stops start-up before anything connects.
  const agents = loadAgentsFile(loadConfig().ATELIER_AGENTS_FILE);
  const spawner = spawnerBinary(loadConfig().ATELIER_AGENT_SPAWNER);

  /** One per process: how its agents and git commands are started, closed once its workers have stopped. */
  let spawning: AgentSpawning | undefined;
  const spawningOf = (logger: Logger): AgentSpawning => (spawning ??= agentSpawn(spawner, logger));
  /** One per process: git, started as agents are. */
  let git: Git | undefined;
  const gitOf = (logger: Logger): Git => (git ??= gitVia(spawningOf(logger).spawn));
  /** One set of worktree activities per process, shared by both queues and the janitor: its per-repository lock. */
  let worktrees: WorktreeActivities | undefined;
  const worktreesOf = (ctx: Pick<WorkerContext, 'config' | 'pool' | 'identity' | 'logger'>): WorktreeActivities =>
    (worktrees ??= createWorktreeActivities({
      worktreeRoot: worktreeRootOf(ctx.config),
      workerQueue: workerQueueFor(ctx.config.ATELIER_AGENT_QUEUE, ctx.identity),
      store: new WorktreeStore(ctx.pool),
      git: gitOf(ctx.logger),
      endedTasks: new EndedTaskStore(ctx.pool),
      agentHostGone: agentHostGone(new WorkerStore(ctx.pool)),
    }));

  return runWorkerProcess(
    {
      name: 'agent-worker',
      kind: 'agent',
      taskQueue: (config) => config.ATELIER_AGENT_QUEUE,
      metricsPort: (config) => config.ATELIER_AGENT_WORKER_METRICS_PORT,
      slots: (config) => agentSlots(config),
      // Removes worktrees whose task ended (a task removes its own; this catches the rest).
      // The contact with Temporal is watched while the workers run, drain included; the spawner helper
      // is closed once they have stopped.
      background: (ctx) => {
        const janitor = new WorktreeJanitor({
          endedTasks: new EndedTaskStore(ctx.pool),
          worktreeRoot: worktreeRootOf(ctx.config),
          sweep: (input) => worktreesOf(ctx).sweepWorktrees(input),
          intervalMs: JANITOR_INTERVAL_MS,
          logger: ctx.logger.child({ component: 'worktree-janitor' }),
        });
        janitor.start();
        const contact = contactOf(ctx);
        contact.start();
        return {
          stop: async () => {
            contact.stop();
            await janitor.stop();
            spawning?.close();
          },
        };
      },
    },
    async (ctx) => {
      const { config, connection, pool, identity, activityInterceptors } = ctx;
      const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
      // One set of activities for both queues: worktree operations on a repository are serialised in it.
      const activities = {
        ...createAgentActivities({
          agents,
          store: new AttemptStore(pool),
          admission: new AdmissionStore(pool, {
            leaseSeconds: config.ATELIER_LEASE_SECONDS,
            notify: config.ATELIER_WEBHOOK_URLS.length > 0,
          }),
          usage: new AttemptUsageStore(pool),
          workerIdentity: identity,
          env: process.env,
          heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
          wakeSlotWaiter: slotWaiterWaker(pool, client, ctx.logger.child({ component: 'slot-waiter-waker' })),
          wakeBreakerWaiters: breakerWaiterWaker(pool, client, ctx.logger.child({ component: 'breaker-waiter-waker' })),
          saveWork: taskWorkSaver(gitOf(ctx.logger)),
          agentExited: agentProcessEnded,
          arrivedAt: attemptArrivedAt,
          cutOff: contactOf(ctx),
          spawn: spawningOf(ctx.logger).spawn,
        }),
        ...worktreesOf(ctx),
      };
      return createAgentWorkers({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.ATELIER_AGENT_QUEUE,
        identity,
        activities,
        slots: agentSlots(config),
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        interceptors: [activityInterceptors],
        options: {
          maxHeartbeatThrottleInterval: '1 second',
          shutdownGraceTime: `${config.ATELIER_SHUTDOWN_GRACE_SECONDS} seconds`,
        },
      });
    },
  );
});
