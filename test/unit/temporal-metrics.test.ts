import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { freePort } from '../../src/net/free-port';
import { installTemporalRuntime } from '../../src/observability/temporal-metrics';

const listen = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

// The SDK's runtime is one per process: this file installs it once, as a worker process does.
describe('installTemporalRuntime', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  it("tries another port when the exporter's is taken after it was chosen, and exports there", async () => {
    const taken = await freePort();
    // Another program binds the chosen port before the exporter does.
    servers.push(await listen(taken));
    const free = await freePort();
    const chosen: number[] = [];
    const ports = [taken, free];
    const metrics = await installTemporalRuntime({ logger: new DefaultLogger('ERROR') }, async () => {
      const port = ports[chosen.length] as number;
      chosen.push(port);
      return port;
    });
    assert.deepEqual(chosen, [taken, free]);
    const res = await fetch(`http://127.0.0.1:${free}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(typeof (await metrics.scrape()), 'string');
  });
});
