import { ConfigError, type AtelierConfig } from '../config/env';
import { canListen } from '../net/free-port';

/**
 * Refuses to start `up` when a port its services are to listen on cannot be had: another program
 * holds it, or two settings name the same one. The service would fail to bind it at every restart.
 * A metrics port of 0 (any free port) or `off` needs nothing. `reserved`: ports `up` itself is to run
 * something on (its Temporal dev server's), by what takes them.
 */
export async function refuseTakenServicePorts(
  config: AtelierConfig,
  reserved: { port: number; name: string }[] = [],
): Promise<void> {
  const wanted = [
    { variable: 'PORT', port: config.PORT },
    { variable: 'ATELIER_WORKFLOW_WORKER_METRICS_PORT', port: config.ATELIER_WORKFLOW_WORKER_METRICS_PORT },
    { variable: 'ATELIER_AGENT_WORKER_METRICS_PORT', port: config.ATELIER_AGENT_WORKER_METRICS_PORT },
  ];
  const named = new Map<number, string>(reserved.map(({ port, name }) => [port, name]));
  for (const { variable, port } of wanted) {
    if (port === 'off' || port === 0) continue;
    const other = named.get(port);
    if (other !== undefined) throw new ConfigError(`${variable}: port ${port} is ${other} already`);
    named.set(port, variable);
    if (!(await canListen(config.HOST, port))) {
      throw new ConfigError(
        `${variable}: ${config.HOST}:${port} is already in use by another program: stop it, or set ${variable} to a free port`,
      );
    }
  }
}
