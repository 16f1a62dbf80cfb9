import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { proxyBase } from './proxy-base';

/** A TLS front for a plain gRPC service, with the certificate a client must trust to reach it. */
export interface TlsProxy {
  /** `host:port` to connect to over TLS. */
  address: string;
  /** The proxy's self-signed certificate (PEM), to trust as the CA. */
  caFile: string;
  /** The name the certificate is for (the address is 127.0.0.1): the client's server name override. */
  serverName: string;
  close: () => Promise<void>;
}

/**
 * Terminates TLS (HTTP/2 by ALPN, as gRPC asks) in front of `target` and passes the bytes on as they
 * are: a Temporal frontend reached as a TLS one is (Temporal Cloud, mTLS), though the dev server speaks
 * plain gRPC. The certificate is made for the run with openssl.
 */
export async function startTlsProxy(target: string): Promise<TlsProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-tls-proxy-'));
  const serverName = 'temporal.test';
  const [keyFile, caFile] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${serverName}`,
      '-addext',
      `subjectAltName=DNS:${serverName}`,
      '-keyout',
      keyFile,
      '-out',
      caFile,
    ],
    { stdio: 'ignore' },
  );
  const { host, port, track, listen } = proxyBase(target);
  const server = createServer(
    { key: readFileSync(keyFile), cert: readFileSync(caFile), ALPNProtocols: ['h2'] },
    (client) => {
      const upstream = connect({ host, port });
      track(client);
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
    },
  );
  const { address, close } = await listen(server);
  return {
    address,
    caFile,
    serverName,
    close: async () => {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
