import type { ActivitySlotInfo, CustomSlotSupplier } from '@temporalio/worker';

/**
 * An agent's slot: called when its attempt's activity returns. `agentEnded`, called as soon as the
 * agent's process has exited, frees the slot earlier, while the attempt's records are still written,
 * so the next agent need not wait for them. `keep`, instead of the call, for an attempt whose agent
 * never ran: on the own queue the slot is kept for the task's next attempt (see `reserve`).
 */
export type AgentSlot = (() => void) & { agentEnded: () => void; keep: () => void };

/** How long a slot is kept for a task's next attempt before others may have it. */
export const RESERVATION_MS = 60_000;

/** Why an attempt gets no slot once its worker drains (`AgentSlotPool.drain`): it should run elsewhere. */
export class WorkerDraining extends Error {
  constructor() {
    super('agent not started: its worker is shutting down');
    this.name = 'WorkerDraining';
  }
}

/**
 * Why a shared-queue attempt asked to be handed back rather than wait (`take`) gets no slot: none is
 * free now. Its start-to-close timeout has no room for a wait in line, unlike an own-queue attempt's.
 */
export class NoFreeSlot extends Error {
  constructor() {
    super('agent not started: its worker has no free slot');
    this.name = 'NoFreeSlot';
  }
}

/**
 * The agent slots of one agent worker process, counted once for its two Temporal workers: the one on
 * the shared agent queue and the one on its own queue (worker-queue.ts). Temporal counts slots per
 * worker, so with a limit on each the process would run twice its agents.
 *
 * - The limit itself: every agent attempt takes a slot before it starts (`take`, called by
 *   agent-slot-interceptor.ts) and, while all `total` are taken, waits in line, first come first served.
 * - The shared queue's worker takes a task only while this process could start its agent at once: it
 *   asks `sharedQueueSupplier` for a permit before each poll, and gets one only while the shared
 *   queue's tasks in hand (polls included) and the own queue's agents (running or in line) together
 *   stay under `total`. Work this worker could not start stays on the queue for an idle worker.
 * - The own queue's worker is not limited here: its tasks can run on no other worker (their worktree
 *   is on this disk), and it must take them within their schedule-to-start timeout.
 * - A worktree prepared here binds its task to this worker, so a slot is kept for it (`reserve`), when
 *   one is free, until its first attempt takes it, at once and out of line, or for `RESERVATION_MS`
 *   at most. With a fixed number of slots the shared queue's worker counts kept slots as taken, so a
 *   burst of worktree tasks binds no more tasks to one worker than it has slots. An attempt held back
 *   by an open breaker, which its chain's next agent follows at once, keeps its slot the same way
 *   (the interceptor calls `keep` only when the chain has a next agent).
 * - Once the process shuts down (`drain`), no agent starts: the attempts in line are refused, to run elsewhere.
 *
 * One semaphore behind both workers' slot suppliers would not do: Temporal reserves a slot before it
 * polls, so the shared queue's idle pollers would hold every permit, and the own queue, whose tasks
 * nobody else can run, would wait for them. A poll already under way cannot be taken back: when an
 * own-queue agent arrives during it, the shared task it brings finds no slot; it waits in line here, or
 * is handed back to the queue (`take`'s `handBackIfBusy`).
 */
export class AgentSlotPool {
  /** Agents holding a slot. */
  private running = 0;
  /** Agents from the own queue (any queue but the shared one), holding a slot or in line for one. */
  private ownAgents = 0;
  /** Permits of the shared queue's worker: its polls and the tasks they brought. */
  private sharedPermits = 0;
  /**
   * Shared-queue tasks whose agent has ended while their activity still writes the attempt's records:
   * their permits hold no agent, so the worker may poll for the next task meanwhile.
   */
  private sharedEnded = 0;
  /** Of those, the ones whose activity has returned: Temporal releases their permits next. */
  private sharedEndedReturned = 0;
  /** Slots kept for a task's next attempt here (its worktree was just prepared, or a breaker held it back), by task id. */
  private readonly reserved = new Map<string, NodeJS.Timeout>();
  private readonly agentLine: (() => void)[] = [];
  private readonly pollLine: (() => void)[] = [];
  /** Aborted once the process drains (`drain`), with `WorkerDraining` as the reason. */
  private readonly draining = new AbortController();

  /**
   * `handsBack`: whether a shared-queue attempt may be handed back when no slot is free (`take`). Only
   * with a fixed number of slots, where the shared queue polls only while a slot is free and a busy
   * answer is the rare race of a poll under way; with the resource-based tuner, which does not count
   * the own queue's agents, the shared queue may poll while all slots are taken, and its attempts wait.
   */
  constructor(
    private readonly total: number,
    private readonly sharedQueue: string,
    private readonly handsBack = false,
  ) {}

  /**
   * Keeps a slot for task `taskId`, whose worktree this worker has just prepared, until its first
   * attempt takes it or `RESERVATION_MS` pass. Keeps none while every slot is taken or kept: that
   * attempt then waits in line.
   */
  reserve(taskId: string): void {
    if (!this.reserved.has(taskId) && this.running + this.reserved.size >= this.total) return;
    this.keepFor(taskId);
  }

  /** Keeps (again) the slot of task `taskId` for `RESERVATION_MS`. */
  private keepFor(taskId: string): void {
    clearTimeout(this.reserved.get(taskId));
    const lapse = setTimeout(() => this.forget(taskId), RESERVATION_MS);
    lapse.unref();
    this.reserved.set(taskId, lapse);
  }

  /** Ends the keeping of task `taskId`'s slot; true if one was kept. */
  private unkeep(taskId: string | undefined): boolean {
    if (taskId === undefined || !this.reserved.has(taskId)) return false;
    clearTimeout(this.reserved.get(taskId));
    return this.reserved.delete(taskId);
  }

  /** Gives the slot kept for task `taskId`, if any, back to the others. */
  private forget(taskId: string | undefined): void {
    if (this.unkeep(taskId)) this.pump();
  }

  /**
   * The process has begun to shut down: no agent starts here any more, since it would be killed when
   * the drain's grace period ends. The attempts in line for a slot, and every later `take`, are refused
   * with `WorkerDraining`; the agents running go on.
   */
  drain(): void {
    this.draining.abort(new WorkerDraining());
  }

  /**
   * Waits for a slot for an agent of task `taskId` from `taskQueue` (at once, when one is kept for the
   * task); resolves with its release, to call when the attempt's activity returns. Rejects with the
   * signal's reason, out of line, when the signal aborts first (a cancelled activity), and gives
   * back the slot kept for the task; once the pool drains, with `WorkerDraining`. With
   * `handBackIfBusy`, in a pool that `handsBack`, an attempt from the shared queue does not wait: it
   * rejects with `NoFreeSlot` unless a slot is free now.
   */
  async take(
    taskQueue: string,
    taskId: string | undefined,
    signal: AbortSignal,
    handBackIfBusy = false,
  ): Promise<AgentSlot> {
    if (signal.aborted) this.forget(taskId);
    signal.throwIfAborted();
    this.draining.signal.throwIfAborted();
    const own = taskQueue !== this.sharedQueue;
    if (own) this.ownAgents += 1;
    // The kept slot becomes this agent's: the count of slots taken or kept stays the same.
    if (this.unkeep(taskId)) {
      this.running += 1;
    } else if (!own && handBackIfBusy && this.handsBack && !this.freeNow()) {
      throw new NoFreeSlot();
    } else {
      try {
        await this.wait(this.agentLine, signal, this.draining.signal);
      } catch (err) {
        if (own) this.ownAgents -= 1;
        this.pump();
        throw err;
      }
    }
    let agentGone = false;
    let released = false;
    const free = (): void => {
      agentGone = true;
      this.running -= 1;
      if (own) this.ownAgents -= 1;
    };
    const agentEnded = (): void => {
      if (agentGone) return;
      free();
      if (!own) this.sharedEnded += 1;
      this.pump();
    };
    const release = (): void => {
      if (released) return;
      released = true;
      if (!agentGone) {
        free();
        this.pump();
      } else if (!own) {
        this.sharedEndedReturned += 1;
      }
    };
    const keep = (): void => {
      if (released || agentGone || !own || taskId === undefined || this.reserved.has(taskId)) return release();
      released = true;
      free();
      this.keepFor(taskId);
    };
    return Object.assign(release, { agentEnded, keep });
  }

  /** For the shared queue's worker: `tuner.activityTaskSlotSupplier`. */
  readonly sharedQueueSupplier: CustomSlotSupplier<ActivitySlotInfo> = {
    type: 'custom',
    reserveSlot: async (_ctx, signal) => {
      await this.wait(this.pollLine, signal);
      return {};
    },
    tryReserveSlot: () => {
      if (!this.sharedRoom()) return null;
      this.sharedPermits += 1;
      return {};
    },
    markSlotUsed: () => undefined,
    releaseSlot: (ctx) => {
      this.sharedPermits -= 1;
      // Permits carry no task identity: a used one released while an ended task's permit is due is
      // taken for that one. If it was another's, the count holds one permit too many until the ended
      // task's own release, never one too few.
      if (ctx.slotInfo !== undefined && this.sharedEndedReturned > 0) {
        this.sharedEndedReturned -= 1;
        this.sharedEnded -= 1;
      }
      this.pump();
    },
  };

  /** Whether an agent asking now would start at once: a slot is free and nobody is in line for it. */
  private freeNow(): boolean {
    return this.agentLine.length === 0 && this.running + this.reserved.size < this.total;
  }

  private sharedRoom(): boolean {
    return this.sharedPermits - this.sharedEnded + this.ownAgents + this.reserved.size < this.total;
  }

  /** Stands in `line` until pump() lets it through; steps out, with its reason, if a signal aborts first. */
  private wait(line: (() => void)[], ...signals: AbortSignal[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        for (const signal of signals) signal.removeEventListener('abort', abort);
      };
      const through = (): void => {
        leave();
        resolve();
      };
      const abort = (event: Event): void => {
        leave();
        line.splice(line.indexOf(through), 1);
        reject((event.target as AbortSignal).reason);
      };
      for (const signal of signals) signal.addEventListener('abort', abort, { once: true });
      line.push(through);
      this.pump();
    });
  }

  /** Lets through, in order, the agents and then the polls there is room for now. */
  private pump(): void {
    while (this.running + this.reserved.size < this.total && this.agentLine.length > 0) {
      this.running += 1;
      (this.agentLine.shift() as () => void)();
    }
    while (this.pollLine.length > 0 && this.sharedRoom()) {
      this.sharedPermits += 1;
      (this.pollLine.shift() as () => void)();
    }
  }
}
