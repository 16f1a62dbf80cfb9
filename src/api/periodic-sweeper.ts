import type { BeforeApplicationShutdown, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { PeriodicRun } from './periodic-run';

/** An API job that sweeps the database every so often (`periodic`), started and stopped with the app. */
export abstract class PeriodicSweeper
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  protected abstract readonly periodic: PeriodicRun;

  onApplicationBootstrap(): void {
    this.periodic.start();
  }

  /**
   * Starts no more sweeps as shutdown begins. A sweep under way is waited for only in
   * onApplicationShutdown: Nest runs every module's beforeApplicationShutdown first, LogsModule's
   * (which ends the open log streams) after a sweeper's module's, and a slow sweep must not hold those.
   */
  beforeApplicationShutdown(): void {
    this.periodic.stop();
  }

  /**
   * Waits for a sweep under way: after the open streams and the HTTP server have closed, and before
   * the global InfrastructureModule (whose hooks Nest runs last) ends the database pool it uses.
   */
  onApplicationShutdown(): Promise<void> {
    return this.periodic.settled();
  }
}
