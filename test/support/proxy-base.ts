import { type Server, type Socket } from 'node:net';

/** What every TCP proxy of the tests does around its own forwarding. */
export interface ProxyBase {
  /** The service's host and port. */
  host: string;
  port: number;
  /** Keeps a socket (a client's, or one to the service) to destroy at close; its errors are ignored. */
  track: (socket: Socket) => void;
  /** Listens on a free port of 127.0.0.1: its `host:port`, and the close that ends every connection too. */
  listen: (server: Server) => Promise<{ address: string; close: () => Promise<void> }>;
}

/** The common part of a proxy in front of `target` (`host:port`). */
export function proxyBase(target: string): ProxyBase {
  const at = target.lastIndexOf(':');
  const sockets = new Set<Socket>();
  return {
    host: target.slice(0, at),
    port: Number(target.slice(at + 1)),
    track: (socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    },
    listen: async (server) => {
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
    },
  };
}
