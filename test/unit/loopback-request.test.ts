import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { foreignHeader } from '../../src/net/loopback-request';

describe('foreignHeader', () => {
  it('takes every spelling of this machine in Host and Origin', () => {
    const hosts = [
      '127.0.0.1:3000',
      '127.0.0.1.:3000',
      '127.1.2.3',
      'localhost:3000',
      'LOCALHOST',
      'localhost.:3000',
      'app.localhost:3000',
      '[::1]:3000',
      '[0:0:0:0:0:0:0:1]',
      '[::ffff:127.0.0.1]:3000',
    ];
    for (const host of hosts) {
      assert.equal(foreignHeader({ host }), undefined, host);
      assert.equal(foreignHeader({ host, origin: `http://${host}` }), undefined, `origin ${host}`);
    }
    assert.equal(foreignHeader({}), undefined, 'a client that sends neither');
  });

  it('names the header that points elsewhere: another name, address, or no origin at all', () => {
    const elsewhere = [
      'evil.example',
      'localhost.evil.example',
      'evil.localhost.example',
      '10.0.0.5:3000',
      '[::ffff:10.0.0.5]',
      '[::2]',
      '',
      'not a host',
    ];
    for (const host of elsewhere) assert.equal(foreignHeader({ host }), 'Host', JSON.stringify(host));
    for (const origin of ['https://evil.example', 'null', 'http://10.0.0.5:3000', 'file://']) {
      assert.equal(foreignHeader({ host: '127.0.0.1:3000', origin }), 'Origin', origin);
    }
  });
});
