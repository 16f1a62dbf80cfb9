import { connect, createServer, type Socket } from 'node:net';
import { proxyBase } from './proxy-base';

/** A TCP proxy in front of a service, whose line can be cut as a network partition cuts it. */
export interface CuttableProxy {
  /** `host:port` to connect to instead of the service. */
  address: string;
  /**
   * From now on nothing passes, either way: open connections stay open but silent (no reset, no end),
   * and new ones are accepted and never answered.
   */
  cut: () => void;
  /**
   * Cuts, as `cut` does, only the open connections whose client last sent bytes holding `marker` (an
   * HTTP request's path, say), as a NAT that forgets one connection: the others, and new ones, pass.
   */
  cutWhere: (marker: string) => void;
  close: () => Promise<void>;
}

export interface CuttableProxyOptions {
  /**
   * Cuts the line by itself when a client sends bytes holding this string, before they pass: in front
   * of a gRPC service (messages uncompressed), it stops the service answering from the first request
   * that names it (a task queue, say) while the requests before it were answered.
   */
  cutOnSend?: string;
}

export async function startCuttableProxy(target: string, opts: CuttableProxyOptions = {}): Promise<CuttableProxy> {
  const { host, port, track, listen } = proxyBase(target);
  const pairs: { client: Socket; upstream: Socket; lastSent?: Buffer }[] = [];
  let isCut = false;
  const silence = ({ client, upstream }: { client: Socket; upstream: Socket }): void => {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  };
  const cut = (): void => {
    isCut = true;
    pairs.forEach(silence);
  };
  const server = createServer((client) => {
    track(client);
    if (isCut) return client.pause();
    const upstream = connect({ host, port });
    track(upstream);
    const pair: (typeof pairs)[number] = { client, upstream };
    client.on('data', (chunk: Buffer) => (pair.lastSent = chunk));
    const marker = opts.cutOnSend;
    if (marker === undefined) client.pipe(upstream);
    else {
      client.on('data', (chunk: Buffer) => {
        if (chunk.includes(marker)) cut();
        if (!isCut) upstream.write(chunk);
      });
      client.on('end', () => upstream.end());
    }
    upstream.pipe(client);
    pairs.push(pair);
  });
  return {
    ...(await listen(server)),
    cut,
    cutWhere: (marker) => pairs.filter((p) => p.lastSent?.includes(marker)).forEach(silence),
  };
}
