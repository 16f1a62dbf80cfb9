import { connect, createServer, type Socket } from 'node:net';

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
  const at = target.lastIndexOf(':');
  const [host, port] = [target.slice(0, at), Number(target.slice(at + 1))];
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  return {
    address: `127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
