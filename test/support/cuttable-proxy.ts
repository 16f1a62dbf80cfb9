import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy in front of a service, whose line can be cut as a network partition cuts it. */
export interface CuttableProxy {
  /** `host:port` to connect to instead of the service. */
  address: string;
  /**
   * From now on nothing passes, either way: open connections stay open but silent (no reset, no end),
   * and new ones are accepted and never answered.
   */
  cut: () => void;
  close: () => Promise<void>;
}

export async function startCuttableProxy(target: string): Promise<CuttableProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const pairs: [Socket, Socket][] = [];
  let isCut = false;
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    track(client);
    if (isCut) return client.pause();
    const upstream = connect({ host, port });
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  return {
    address: `127.0.0.1:${address.port}`,
    cut: () => {
      isCut = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
