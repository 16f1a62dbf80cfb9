import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackHost } from '../config/api-access';
import { foreignHeader } from '../net/loopback-request';

export interface MetricsServer {
  /** Where Prometheus scrapes this process, e.g. `http://10.0.0.7:9465/metrics`. */
  url: string;
  port: number;
  close: () => Promise<void>;
}

export interface MetricsServerOptions {
  host: string;
  /** 0 takes any free port. */
  port: number;
  /** The exposition text and its content type, rendered on each scrape. */
  render: () => Promise<{ contentType: string; body: string }>;
  /** For GET /health/ready: true while the worker polls its task queue. */
  ready: () => boolean;
  onError: (err: Error) => void;
}

/** The host name to put in a URL for a listen address (a wildcard address is reachable by the machine's name). */
function urlHost(listenHost: string, machine: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '::') return machine;
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
}

/**
 * A worker's HTTP endpoint: a bare server (workers have no web framework) with `GET /metrics`, and
 * `GET /health/live` and `GET /health/ready` for a supervisor's probes (ready while the worker polls).
 * A scrape that fails to render answers 500 and is reported, never crashing the worker. On a loopback
 * address it answers 403 to a call a browser made for another site's page (foreignHeader), as the API
 * does: a page whose domain was re-pointed at 127.0.0.1 could otherwise read what the worker runs.
 */
export async function startMetricsServer(opts: MetricsServerOptions, machine: string): Promise<MetricsServer> {
  const onLoopback = isLoopbackHost(opts.host);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = { 'content-type': 'application/json; charset=utf-8' };
    const foreign = onLoopback ? foreignHeader(req.headers) : undefined;
    if (foreign !== undefined) {
      res
        .writeHead(403, { 'content-type': 'text/plain; charset=utf-8' })
        .end(
          `the ${foreign} header names another machine: on a loopback address this endpoint answers only this machine\n`,
        );
      return;
    }
    if (req.method === 'GET' && path === '/health/live') {
      res.writeHead(200, json).end('{"status":"ok"}\n');
      return;
    }
    if (req.method === 'GET' && path === '/health/ready') {
      const ready = opts.ready();
      res.writeHead(ready ? 200 : 503, json).end(ready ? '{"status":"ok"}\n' : '{"status":"error"}\n');
      return;
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try GET /metrics\n');
      return;
    }
    opts.render().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: Error) => {
        opts.onError(err);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  // A scrape is short; an idle connection should not keep a stopping worker alive.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${urlHost(opts.host, machine)}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
