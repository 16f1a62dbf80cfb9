import { connect, createServer } from 'node:net';
import { proxyBase } from './proxy-base';

/** A TCP proxy in front of a service that changes one string in what clients send. */
export interface RewritingProxy {
  /** `host:port` to connect to instead of the service. */
  address: string;
  close: () => Promise<void>;
}

/**
 * Replaces every `from` in the bytes clients send with `to`, of the same length so that the framing
 * around it holds: in front of a gRPC service (messages uncompressed, a small one in one chunk), it
 * makes the requests that name `from` name `to` instead, e.g. a run that does not exist, while every
 * other request passes as it is.
 */
export async function startRewritingProxy(target: string, from: string, to: string): Promise<RewritingProxy> {
  const [fromBytes, toBytes] = [Buffer.from(from), Buffer.from(to)];
  if (fromBytes.length !== toBytes.length) throw new Error('the replacement must have the same length');
  const { host, port, track, listen } = proxyBase(target);
  const server = createServer((client) => {
    const upstream = connect({ host, port });
    track(client);
    track(upstream);
    client.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(fromBytes); i >= 0; i = chunk.indexOf(fromBytes, i + fromBytes.length)) {
        toBytes.copy(chunk, i);
      }
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
  });
  return listen(server);
}
