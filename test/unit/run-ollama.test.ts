import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ollamaAddress, runOllama } from '../../activities/agent/run-ollama';

describe('runOllama', () => {
  it('names an unreachable server without the credentials or token its baseUrl carries', async () => {
    // Port 9 (discard) takes no connections on the loopback address.
    const baseUrl = 'http://ollama-user:s3cret-pass@127.0.0.1:9/ollama/?key=k3y-t0ken#fr4gment';
    const end = await runOllama({
      baseUrl,
      model: 'qwen2.5-coder:7b',
      prompt: 'hello',
      timeoutMs: 10_000,
      signal: new AbortController().signal,
      onOutput: () => assert.fail('no output from a server that is not there'),
    });
    assert.equal(end.kind, 'connection_failed');
    const { message } = end as { message: string };
    assert.match(message, /^cannot reach http:\/\/127\.0\.0\.1:9\/ollama\/: ECONNREFUSED$/);
    for (const secret of ['ollama-user', 's3cret-pass', 'k3y-t0ken', 'fr4gment'])
      assert.ok(!message.includes(secret), secret);
  });

  it('leaves the user, password, query and fragment out of the address it names', () => {
    assert.equal(ollamaAddress('https://user:token@ollama.internal:11434'), 'https://ollama.internal:11434/');
    assert.equal(ollamaAddress('not a url:token'), 'the Ollama server');
  });
});
