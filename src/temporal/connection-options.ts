import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { ConfigError, type AtelierConfig, type TemporalSecurityConfig } from '../config/env';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

const read = (variable: string, path: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as Error).message}`);
  }
};

/**
 * How every Atelier process connects to Temporal: plain gRPC to TEMPORAL_ADDRESS by default; TLS when
 * asked for, with a custom CA and a client certificate (mTLS) read from files; an API key (Temporal
 * Cloud) implies TLS. Files are read once, at start, so a bad path stops start-up with its name.
 */
export function temporalConnectionOptions(
  config: TemporalSecurityConfig & Pick<AtelierConfig, 'TEMPORAL_ADDRESS'>,
): TemporalConnectionOptions {
  const cert = config.TEMPORAL_TLS_CERT_FILE;
  const key = config.TEMPORAL_TLS_KEY_FILE;
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError('TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together: set both or neither');
  }
  const tls: TLSConfig = {
    ...(config.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME } : {}),
    ...(config.TEMPORAL_TLS_CA_FILE
      ? { serverRootCACertificate: read('TEMPORAL_TLS_CA_FILE', config.TEMPORAL_TLS_CA_FILE) }
      : {}),
    ...(cert && key
      ? { clientCertPair: { crt: read('TEMPORAL_TLS_CERT_FILE', cert), key: read('TEMPORAL_TLS_KEY_FILE', key) } }
      : {}),
  };
  const wantsTls =
    config.TEMPORAL_TLS === 'true' || Object.keys(tls).length > 0 || config.TEMPORAL_API_KEY !== undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    ...(wantsTls ? { tls: Object.keys(tls).length > 0 ? tls : true } : {}),
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
  };
}
