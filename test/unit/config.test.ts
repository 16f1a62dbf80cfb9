import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertApiAccess } from '../../src/config/api-access';
import { ConfigError, describeDatabase, loadConfig } from '../../src/config/env';

/** Asserts that `env` is refused with a ConfigError naming `variable` and matching `reason`. */
function assertRefused(env: NodeJS.ProcessEnv, variable: string, reason: RegExp): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      const line = err.message.split('\n').find((l) => l.trim().startsWith(`${variable}:`));
      assert.ok(line, `the error names ${variable}: ${err.message}`);
      assert.match(line, reason);
      return true;
    },
  );
}

describe('loadConfig', () => {
  it('applies every default to an empty environment', () => {
    assert.deepEqual(loadConfig({}), {
      PORT: 3000,
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/atelier',
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TLS: 'false',
      TEMPORAL_UI_URL: 'http://127.0.0.1:8233',
      ATELIER_AGENTS_FILE: 'config/agents.yaml',
      ATELIER_AGENT_SLOTS: 4,
      ATELIER_AGENT_MAX_SLOTS: 50,
      ATELIER_AGENT_TARGET_CPU: 0.8,
      ATELIER_AGENT_TARGET_MEMORY: 0.8,
      ATELIER_WORKFLOW_WORKER_METRICS_PORT: 9464,
      ATELIER_AGENT_WORKER_METRICS_PORT: 9465,
      ATELIER_API_TOKENS: [],
      ATELIER_WORKFLOW_QUEUE: 'atelier-workflows',
      ATELIER_AGENT_QUEUE: 'atelier-agents',
      ATELIER_SHUTDOWN_GRACE_SECONDS: 30,
      ATELIER_RETRY_BACKOFF_SECONDS: 1,
      ATELIER_WAIT_RECHECK_SECONDS: 5,
      ATELIER_LEASE_SECONDS: 30,
      ATELIER_STRANDED_AFTER_SECONDS: 120,
      ATELIER_LOCK_TABLE_MAX_BYTES: 1_000_000,
      ATELIER_CLOSED_RUN_SWEEP_SECONDS: 10,
      ATELIER_LOG_FOLLOWERS_MAX: 1000,
      ATELIER_LOG_DOWNLOADS_MAX: 100,
      LOG_LEVEL: 'info',
      ATELIER_WEBHOOK_URLS: [],
      ATELIER_WEBHOOK_RETENTION_DAYS: 7,
    });
  });

  it('coerces numbers from their text and keeps given values', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://app:pw@db:5433/atelier',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      ATELIER_AGENT_SLOTS: '16',
      ATELIER_SHUTDOWN_GRACE_SECONDS: '0',
      ATELIER_RETRY_BACKOFF_SECONDS: '0.25',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.PORT, 8080);
    assert.equal(config.HOST, '0.0.0.0');
    assert.equal(config.DATABASE_URL, 'postgres://app:pw@db:5433/atelier');
    assert.equal(config.TEMPORAL_ADDRESS, 'temporal.internal:7233');
    assert.equal(config.ATELIER_AGENT_SLOTS, 16);
    assert.equal(config.ATELIER_SHUTDOWN_GRACE_SECONDS, 0);
    assert.equal(config.ATELIER_RETRY_BACKOFF_SECONDS, 0.25);
    assert.equal(config.LOG_LEVEL, 'debug');
  });

  it('ignores variables it does not know', () => {
    assert.equal(loadConfig({ PATH: '/bin', SOMETHING_ELSE: 'x' }).PORT, 3000);
  });

  it('treats a blank variable as unset rather than as zero', () => {
    const config = loadConfig({ PORT: '', ATELIER_AGENT_SLOTS: '  ', ATELIER_RETRY_BACKOFF_SECONDS: '', HOST: '' });
    assert.equal(config.PORT, 3000);
    assert.equal(config.ATELIER_AGENT_SLOTS, 4);
    assert.equal(config.ATELIER_RETRY_BACKOFF_SECONDS, 1);
    assert.equal(config.HOST, '127.0.0.1');
  });

  it('refuses a PORT that is not a number, or out of range', () => {
    assertRefused({ PORT: 'abc' }, 'PORT', /number/);
    assertRefused({ PORT: '65536' }, 'PORT', /65535/);
    assertRefused({ PORT: '80.5' }, 'PORT', /int/i);
    // 0 would listen on a random port, which neither `up` nor a load balancer could find.
    assertRefused({ PORT: '0' }, 'PORT', />=1/);
  });

  it('refuses a DATABASE_URL that is not PostgreSQL', () => {
    assertRefused({ DATABASE_URL: 'mysql://root@127.0.0.1:3306/atelier' }, 'DATABASE_URL', /postgresql:\/\//);
  });

  it('refuses a DATABASE_URL that only starts like one, naming DATABASE_URL', () => {
    assertRefused({ DATABASE_URL: 'postgresql://user:pa ss@[db:5432/atelier' }, 'DATABASE_URL', /postgresql:\/\//);
  });

  it('reads a blank TEMPORAL_ADDRESS as unset: the default address', () => {
    assert.equal(loadConfig({ TEMPORAL_ADDRESS: ' ' }).TEMPORAL_ADDRESS, '127.0.0.1:7233');
  });

  it('refuses a TEMPORAL_ADDRESS without a port', () => {
    assertRefused({ TEMPORAL_ADDRESS: 'temporal.internal' }, 'TEMPORAL_ADDRESS', /host:port/);
    assertRefused({ TEMPORAL_ADDRESS: 'temporal.internal:' }, 'TEMPORAL_ADDRESS', /host:port/);
  });

  it('refuses ATELIER_AGENT_SLOTS below one', () => {
    assertRefused({ ATELIER_AGENT_SLOTS: '0' }, 'ATELIER_AGENT_SLOTS', />=1/);
    assertRefused({ ATELIER_AGENT_SLOTS: 'four' }, 'ATELIER_AGENT_SLOTS', /number/);
  });

  it('refuses an ATELIER_LEASE_SECONDS too short to outlast the renewals', () => {
    assertRefused({ ATELIER_LEASE_SECONDS: '5' }, 'ATELIER_LEASE_SECONDS', />=10/);
  });

  it('takes ATELIER_AGENT_SPAWNER as an absolute path or direct, and refuses anything else', () => {
    assert.equal(loadConfig({ ATELIER_AGENT_SPAWNER: 'direct' }).ATELIER_AGENT_SPAWNER, 'direct');
    assert.equal(loadConfig({ ATELIER_AGENT_SPAWNER: '/opt/spawner' }).ATELIER_AGENT_SPAWNER, '/opt/spawner');
    assertRefused({ ATELIER_AGENT_SPAWNER: 'bin/spawner' }, 'ATELIER_AGENT_SPAWNER', /absolute path or direct/);
  });

  it('refuses an unknown LOG_LEVEL and a TEMPORAL_UI_URL that is not a URL', () => {
    assertRefused({ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /info/);
    assertRefused({ TEMPORAL_UI_URL: 'not a url' }, 'TEMPORAL_UI_URL', /url/i);
  });

  it('names every bad variable at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'abc', ATELIER_AGENT_SLOTS: '0', DATABASE_URL: 'mysql://x' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const name of ['PORT', 'ATELIER_AGENT_SLOTS', 'DATABASE_URL']) {
          assert.match(err.message, new RegExp(`^  ${name}: `, 'm'));
        }
        return true;
      },
    );
  });

  it('splits ATELIER_API_TOKENS on commas, trimming and dropping empty entries', () => {
    assert.deepEqual(loadConfig({ ATELIER_API_TOKENS: 'tok1' }).ATELIER_API_TOKENS, ['tok1']);
    assert.deepEqual(loadConfig({ ATELIER_API_TOKENS: ' tok1, tok2 ,,tok3, ' }).ATELIER_API_TOKENS, [
      'tok1',
      'tok2',
      'tok3',
    ]);
    assert.deepEqual(loadConfig({ ATELIER_API_TOKENS: '' }).ATELIER_API_TOKENS, []);
  });

  it('refuses an ATELIER_API_TOKENS that is set but names no token, rather than leave /v1 open', () => {
    for (const value of [',', ' , ', ',,,']) {
      assertRefused({ ATELIER_API_TOKENS: value }, 'ATELIER_API_TOKENS', /names no token/);
    }
  });

  it('refuses a token holding whitespace, naming its position and never its text', () => {
    for (const value of ['tok1,secret part', 'tok1,tab\tinside', 'new\nline']) {
      assertRefused({ ATELIER_API_TOKENS: value }, 'ATELIER_API_TOKENS', /entry \d contains whitespace/);
      assert.throws(
        () => loadConfig({ ATELIER_API_TOKENS: value }),
        (err: Error) =>
          !err.message.includes('secret') && !err.message.includes('tab') && !err.message.includes('line'),
      );
    }
  });

  it('refuses a token no Authorization header carries as written (not printable ASCII), and a change-me placeholder', () => {
    for (const value of ['tok1,tökén-secret', 'sécret', 'tok1,emoji🔑secret']) {
      assertRefused(
        { ATELIER_API_TOKENS: value },
        'ATELIER_API_TOKENS',
        /entry \d holds a character that is not printable ASCII/,
      );
      assert.throws(
        () => loadConfig({ ATELIER_API_TOKENS: value }),
        (err: Error) => !err.message.includes('secret') && !err.message.includes('cret'),
      );
    }
    for (const value of ['change-me-token', 'tok1,CHANGE-ME']) {
      assertRefused({ ATELIER_API_TOKENS: value }, 'ATELIER_API_TOKENS', /entry \d is a change-me placeholder/);
    }
  });

  it('sends to a webhook URL listed twice once', () => {
    assert.deepEqual(
      loadConfig({
        ATELIER_WEBHOOK_URLS: 'https://a.example/h, https://b.example/h,https://a.example/h',
        ATELIER_WEBHOOK_SECRET: 'a-webhook-signing-secret',
      }).ATELIER_WEBHOOK_URLS,
      ['https://a.example/h', 'https://b.example/h'],
    );
  });

  it('takes ATELIER_API_AUTH=none only without tokens', () => {
    assert.equal(loadConfig({ ATELIER_API_AUTH: 'none' }).ATELIER_API_AUTH, 'none');
    assertRefused({ ATELIER_API_AUTH: 'off' }, 'ATELIER_API_AUTH', /none/);
    assertRefused({ ATELIER_API_AUTH: 'none', ATELIER_API_TOKENS: 'tok1' }, 'ATELIER_API_AUTH', /contradicts/);
  });
});

describe('assertApiAccess', () => {
  const refusal = (env: NodeJS.ProcessEnv): string | undefined => {
    try {
      assertApiAccess(loadConfig(env));
      return undefined;
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.message;
    }
  };

  it('lets an API without tokens listen on a loopback address only', () => {
    for (const HOST of ['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
      assert.equal(refusal({ HOST }), undefined, HOST);
    }
    for (const HOST of ['0.0.0.0', '::', '10.0.0.5', 'api.example.com', '::ffff:10.0.0.5']) {
      assert.match(refusal({ HOST }) ?? 'started', /^ {2}ATELIER_API_TOKENS: is required when HOST/m, HOST);
    }
  });

  it('lets it listen anywhere with a token, or with the explicit ATELIER_API_AUTH=none', () => {
    assert.equal(refusal({ HOST: '0.0.0.0', ATELIER_API_TOKENS: 'tok1' }), undefined);
    assert.equal(refusal({ HOST: '0.0.0.0', ATELIER_API_AUTH: 'none' }), undefined);
    assert.match(refusal({ HOST: '0.0.0.0' }) ?? '', /ATELIER_API_AUTH=none/);
  });
});

describe('describeDatabase', () => {
  it('masks the password and keeps the rest', () => {
    const described = describeDatabase('postgresql://atelier:s3cret-pw@db.example:5432/atelier?sslmode=require');
    assert.equal(described, 'postgresql://atelier:***@db.example:5432/atelier?sslmode=require');
    assert.ok(!described.includes('s3cret'));
  });

  it('masks a password with escaped characters', () => {
    const described = describeDatabase('postgres://u:p%40ss%2Fword@h:5432/d');
    assert.equal(described, 'postgres://u:***@h:5432/d');
  });

  it('masks passwords the driver reads from the query string', () => {
    const described = describeDatabase(
      'postgresql://postgres@db.example/atelier?password=qs-s3cret&sslmode=require&sslpassword=key-s3cret',
    );
    assert.equal(described, 'postgresql://postgres@db.example/atelier?password=***&sslmode=require&sslpassword=***');
  });

  it('leaves a URL without a password as it is', () => {
    assert.equal(
      describeDatabase('postgresql://postgres@127.0.0.1:5432/atelier'),
      'postgresql://postgres@127.0.0.1:5432/atelier',
    );
  });
});
