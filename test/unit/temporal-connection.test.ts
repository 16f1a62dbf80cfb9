import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env';
import { temporalConnectionOptions } from '../../src/temporal/connection-options';

describe('temporalConnectionOptions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atelier-tls-'));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is plain gRPC to TEMPORAL_ADDRESS by default', () => {
    assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233' })), {
      address: 'temporal:7233',
    });
  });

  it('uses TLS with the system roots when asked, and for an API key', () => {
    assert.deepEqual(temporalConnectionOptions(loadConfig({ TEMPORAL_TLS: 'true' })).tls, true);
    const cloud = temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: 'secret-key' }));
    assert.equal(cloud.tls, true);
    assert.equal(cloud.apiKey, 'secret-key');
  });

  it('reads a CA and a client certificate pair for mTLS', () => {
    const options = temporalConnectionOptions(
      loadConfig({
        TEMPORAL_TLS_CA_FILE: file('ca.pem', 'CA'),
        TEMPORAL_TLS_CERT_FILE: file('client.pem', 'CERT'),
        TEMPORAL_TLS_KEY_FILE: file('client.key', 'KEY'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      }),
    );
    assert.ok(typeof options.tls === 'object');
    assert.equal(options.tls.serverNameOverride, 'temporal.internal');
    assert.equal(Buffer.from(options.tls.serverRootCACertificate ?? []).toString(), 'CA');
    assert.equal(Buffer.from(options.tls.clientCertPair?.crt ?? []).toString(), 'CERT');
    assert.equal(Buffer.from(options.tls.clientCertPair?.key ?? []).toString(), 'KEY');
  });

  it('names the variable of a file it cannot read, and a certificate without its key', () => {
    assert.throws(
      () => temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_CA_FILE: join(dir, 'missing.pem') })),
      (err: unknown) => err instanceof ConfigError && /TEMPORAL_TLS_CA_FILE/.test(err.message),
    );
    assert.throws(
      () => temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_CERT_FILE: file('only.pem', 'CERT') })),
      (err: unknown) => err instanceof ConfigError && /TEMPORAL_TLS_KEY_FILE/.test(err.message),
    );
  });

  it('refuses a TEMPORAL_TLS other than true or false', () => {
    assert.throws(() => loadConfig({ TEMPORAL_TLS: 'yes' }), /TEMPORAL_TLS/);
  });
});
