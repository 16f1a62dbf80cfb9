import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentsFileError, loadAgentsFile, parseAgentsFile } from '../../src/config/agents-file';

/** The repository root, from dist/test/unit. */
const ROOT = resolve(__dirname, '../../..');
const SOURCE = '/etc/atelier/agents.yaml';

/**
 * Asserts that parsing `text` fails with an AgentsFileError that names the file, then a line naming
 * `path` inside it with a reason matching `reason`.
 */
function assertRejected(text: string, path: string, reason: RegExp): void {
  assert.throws(
    () => parseAgentsFile(text, SOURCE),
    (err: unknown) => {
      assert.ok(err instanceof AgentsFileError, `expected an AgentsFileError, got ${String(err)}`);
      assert.ok(err.message.startsWith(`${SOURCE}: `), `the error names the file: ${err.message}`);
      const line = err.message.split('\n').find((l) => l.trim().startsWith(`${path}: `));
      assert.ok(line, `the error names ${path}: ${err.message}`);
      assert.match(line, reason);
      return true;
    },
  );
}

const indent = (yaml: string): string => yaml.replace(/^(?=.)/gm, '    ');

const oneAgent = (profile: string, defaultAgent = 'a'): string =>
  `defaultAgent: ${defaultAgent}\nagents:\n  a:\n${profile}`;

describe('parseAgentsFile', () => {
  it('reads a valid file and fills in every default', () => {
    const file = parseAgentsFile(
      `
defaultAgent: minimal
agents:
  minimal:
    command: [agent-cli, -p]
  full:
    command: [other-cli, --model, '{model}', '--message={prompt}']
    prompt: arg
    model: m1
    output: text
    timeoutSeconds: 60
    maxAttempts: 1
    envPassthrough: [PATH, API_KEY]
    env: { FIXED: value }
    killGraceSeconds: 0.5
`,
      SOURCE,
    );
    assert.equal(file.defaultAgent, 'minimal');
    assert.deepEqual(file.agents.minimal, {
      command: ['agent-cli', '-p'],
      prompt: 'stdin',
      output: 'text',
      timeoutSeconds: 1800,
      maxAttempts: 3,
      envPassthrough: ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'TZ'],
      env: {},
      killGraceSeconds: 5,
    });
    assert.deepEqual(file.agents.full, {
      command: ['other-cli', '--model', '{model}', '--message={prompt}'],
      prompt: 'arg',
      model: 'm1',
      output: 'text',
      timeoutSeconds: 60,
      maxAttempts: 1,
      envPassthrough: ['PATH', 'API_KEY'],
      env: { FIXED: 'value' },
      killGraceSeconds: 0.5,
    });
  });

  it('refuses a profile without a command', () => {
    assertRejected(oneAgent('    prompt: stdin\n'), 'agents.a.command', /expected array/);
    assertRejected(oneAgent('    command: []\n'), 'agents.a.command', /must name the program/);
  });

  it('refuses prompt: arg without a "{prompt}" element', () => {
    assertRejected(
      oneAgent('    command: [agent-cli, -p]\n    prompt: arg\n'),
      'agents.a.command',
      /prompt: arg needs a "\{prompt\}"/,
    );
  });

  it('refuses an argument that begins with "{prompt}" unless it follows "--"', () => {
    const refused: [string, number, RegExp][] = [
      // After an option, only the joined form is suggested: "--message --" would give the option "--".
      [
        "[agent-cli, --message, '{prompt}']",
        2,
        /join it to its option \("--message=\{prompt\}"\), or give the prompt on stdin/,
      ],
      ["[agent-cli, '{prompt}']", 1, /put "--" before it/],
      ["[agent-cli, '{prompt} now']", 1, /put "--" before it/],
    ];
    for (const [command, index, reason] of refused) {
      assertRejected(oneAgent(`    command: ${command}\n    prompt: arg\n`), `agents.a.command.${index}`, reason);
    }
    for (const command of [
      "[agent-cli, '--message={prompt}']",
      "[agent-cli, --, '{prompt}']",
      "[agent-cli, --format, json, --, '{prompt}']",
      "[agent-cli, --format=json, --, '{prompt}']",
      "[codex, exec, --full-auto, --, '{prompt}']",
      "[agent-cli, 'say: {prompt}']",
    ]) {
      assert.doesNotThrow(
        () => parseAgentsFile(oneAgent(`    command: ${command}\n    prompt: arg\n`), SOURCE),
        command,
      );
    }
  });

  it('refuses a model that begins with "-", which the agent would read as an option', () => {
    assertRejected(
      oneAgent('    command: [gemini, --model, "{model}"]\n    model: --approval-mode=yolo\n'),
      'agents.a.model',
      /must not begin with "-"/,
    );
  });

  it('refuses "{prompt}" in a stdin profile', () => {
    assertRejected(
      oneAgent("    command: [agent-cli, '{prompt}']\n"),
      'agents.a.command',
      /only substituted with prompt: arg/,
    );
  });

  it('refuses a file profile without "{promptFile}", and "{promptFile}" or "{prompt}" in another', () => {
    assertRejected(
      oneAgent('    command: [aider, --message-file]\n    prompt: file\n'),
      'agents.a.command',
      /prompt: file needs a "\{promptFile\}" element/,
    );
    assertRejected(
      oneAgent("    command: [aider, '--message-file={promptFile}']\n"),
      'agents.a.command',
      /"\{promptFile\}" is only substituted with prompt: file/,
    );
    assertRejected(
      oneAgent("    command: [aider, '--message-file={promptFile}', '{prompt}']\n    prompt: file\n"),
      'agents.a.command',
      /"\{prompt\}" is only substituted with prompt: arg/,
    );
    assert.doesNotThrow(() =>
      parseAgentsFile(oneAgent("    command: [aider, '--message-file={promptFile}']\n    prompt: file\n"), SOURCE),
    );
  });

  it('refuses a placeholder as the program itself', () => {
    assertRejected(oneAgent("    command: ['{prompt}']\n    prompt: arg\n"), 'agents.a.command.0', /program itself/);
  });

  it('refuses a defaultAgent that is not among the agents', () => {
    assertRejected(oneAgent('    command: [agent-cli]\n', 'nobody'), 'defaultAgent', /"nobody" is not among agents/);
    // Names every object inherits are no agents.
    assertRejected(
      oneAgent('    command: [agent-cli]\n', 'constructor'),
      'defaultAgent',
      /"constructor" is not among agents/,
    );
  });

  it('refuses a fallback that is not among the agents, though every object has it', () => {
    for (const name of ['toString', 'constructor', '__proto__']) {
      assertRejected(
        oneAgent(`    command: [agent-cli]\n    fallback: ['${name}']\n`),
        'agents.a.fallback.0',
        new RegExp(`"${name}" is not among agents`),
      );
    }
  });

  it('refuses a file without agents', () => {
    assertRejected('defaultAgent: a\nagents: {}\n', 'agents', /at least one agent/);
  });

  it('refuses unknown keys, in a profile and at the top', () => {
    assertRejected(
      oneAgent('    command: [agent-cli]\n    comand: [typo]\n'),
      'agents.a',
      /Unrecognized key: "comand"/,
    );
    assertRejected(`extra: 1\n${oneAgent('    command: [agent-cli]\n')}`, '(root)', /Unrecognized key: "extra"/);
  });

  it('refuses bad values with the reason', () => {
    assertRejected(
      oneAgent('    command: [agent-cli]\n    prompt: env\n'),
      'agents.a.prompt',
      /"stdin"\|"arg"\|"file"/,
    );
    assertRejected(oneAgent('    command: [agent-cli]\n    maxAttempts: 21\n'), 'agents.a.maxAttempts', /<=20/);
    assertRejected(oneAgent('    command: [agent-cli]\n    timeoutSeconds: 0\n'), 'agents.a.timeoutSeconds', />=1/);
    assertRejected(
      oneAgent('    command: [agent-cli]\n    envPassthrough: [BAD-NAME]\n'),
      'agents.a.envPassthrough.0',
      /pattern/,
    );
  });

  it('refuses an agent name that is not lowercase, saying why', () => {
    assertRejected('defaultAgent: a\nagents:\n  Big:\n    command: [agent-cli]\n', 'agents.Big', /lowercase a-z/);
  });

  it('refuses an empty document', () => {
    assertRejected('', '(root)', /expected object/);
  });

  it('refuses text that is not YAML, naming the file and the position', () => {
    assert.throws(
      () => parseAgentsFile(oneAgent('    command: [agent-cli\n'), SOURCE),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(err.message, /^\/etc\/atelier\/agents\.yaml: invalid YAML: .*line \d+, column \d+/);
        return true;
      },
    );
  });

  it('says where the YAML is bad without quoting it, since a line may hold a key', () => {
    const secret = 'sk-live-0123456789abcdef';
    for (const line of [`KEY: "${secret}`, `KEY: |${secret}`, `KEY: [${secret}`]) {
      const text = oneAgent(`    command: [agent-cli]\n    env:\n      ${line}\n`);
      assert.throws(
        () => parseAgentsFile(text, SOURCE),
        (err: unknown) => {
          assert.ok(err instanceof AgentsFileError, String(err));
          assert.match(err.message, /^\/etc\/atelier\/agents\.yaml: invalid YAML: [a-z ]+ at line \d+, column \d+/);
          assert.ok(!err.message.includes(secret.slice(0, 8)), `${line}: ${err.message}`);
          return true;
        },
        line,
      );
    }
  });

  it('refuses a tag it does not know instead of reading the text after it', () => {
    const text = oneAgent('    command: [agent-cli]\n    env:\n      KEY: !secret sk-live-0123456789abcdef\n');
    assert.throws(
      () => parseAgentsFile(text, SOURCE),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError, String(err));
        assert.match(
          err.message,
          /^\/etc\/atelier\/agents\.yaml: invalid YAML: tag resolve failed at line \d+, column \d+$/,
        );
        assert.ok(!err.message.includes('sk-live'), err.message);
        return true;
      },
    );
  });

  it('refuses duplicate keys instead of keeping the last one', () => {
    const text = 'defaultAgent: a\nagents:\n  a:\n    command: [one]\n  a:\n    command: [two]\n';
    assert.throws(
      () => parseAgentsFile(text, SOURCE),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(err.message, /^\/etc\/atelier\/agents\.yaml: invalid YAML: duplicate key at line 5, column 3$/);
        return true;
      },
    );
  });
});

describe('loadAgentsFile', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'atelier-agents-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file, resolving a relative path from the working directory', () => {
    const path = join(dir, 'agents.yaml');
    writeFileSync(path, oneAgent('    command: [agent-cli]\n'));
    assert.deepEqual(loadAgentsFile(path).agents.a?.command, ['agent-cli']);
    assert.deepEqual(loadAgentsFile(relative(process.cwd(), path)).agents.a?.command, ['agent-cli']);
  });

  it('names the absolute path of an invalid file', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, oneAgent('    command: [agent-cli]\n', 'nobody'));
    assert.throws(
      () => loadAgentsFile(relative(process.cwd(), path)),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.ok(err.message.startsWith(`${path}: invalid agents file:`), err.message);
        assert.match(err.message, /defaultAgent: "nobody" is not among agents/);
        return true;
      },
    );
  });

  it('says why a file cannot be read', () => {
    const missing = join(dir, 'missing.yaml');
    assert.throws(
      () => loadAgentsFile(missing),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(
          err.message,
          new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read agents file: .*ENOENT`),
        );
        return true;
      },
    );
    assert.throws(
      () => loadAgentsFile(dir),
      (err: unknown) => {
        assert.ok(err instanceof AgentsFileError);
        assert.match(err.message, /cannot read agents file: .*EISDIR/);
        return true;
      },
    );
  });

  it('says why a file without read permission cannot be read', (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root reads any file');
      return;
    }
    const path = join(dir, 'secret.yaml');
    writeFileSync(path, oneAgent('    command: [agent-cli]\n'));
    chmodSync(path, 0o000);
    assert.throws(() => loadAgentsFile(path), /cannot read agents file: .*EACCES/);
  });

  it('accepts the shipped config/agents.yaml', () => {
    const file = loadAgentsFile(resolve(ROOT, 'config/agents.yaml'));
    assert.equal(file.defaultAgent, 'claude');
    assert.ok(file.defaultAgent in file.agents);
    assert.deepEqual(file.agents.echo?.command, ['cat']);
    for (const [name, profile] of Object.entries(file.agents)) {
      assert.ok(profile.command.length > 0, name);
      assert.equal(
        profile.command.some((a) => a.includes('{prompt}')),
        profile.prompt === 'arg',
        name,
      );
      // A reset time said without a zone is read in the worker's: the agent must say it in that one.
      if (profile.output !== 'ollama-http') assert.ok(profile.envPassthrough.includes('TZ'), `${name} passes TZ`);
    }
  });

  it('runs aider unattended (no update check, no .gitignore edit, no analytics opt-in question) and wide', () => {
    const aider = loadAgentsFile(resolve(ROOT, 'config/agents.yaml')).agents.aider;
    for (const flag of ['--yes-always', '--no-stream', '--no-check-update', '--no-gitignore', '--analytics-disable']) {
      assert.ok(aider?.command.includes(flag), `aider runs with ${flag}`);
    }
    // Rich wraps at 80 columns without a terminal, and aider's usage line with its cost is longer.
    assert.ok(Number(aider?.env.COLUMNS) >= 200, 'aider prints wide lines');
  });

  it('shows each shipped profile in docs/agents.md as config/agents.yaml has it', () => {
    const shipped = loadAgentsFile(resolve(ROOT, 'config/agents.yaml')).agents;
    const docs = readFileSync(resolve(ROOT, 'docs/agents.md'), 'utf8');
    const shown = [...docs.matchAll(/^### `([a-z0-9._-]+)`[^\n]*\n+```yaml\n([\s\S]*?)```/gm)];
    assert.deepEqual(shown.map((m) => m[1]).sort(), Object.keys(shipped).sort(), 'every shipped profile is shown');
    for (const [, name, yaml] of shown) {
      const profile = parseAgentsFile(`defaultAgent: x\nagents:\n  x:\n${indent(yaml ?? '')}`, 'docs/agents.md');
      assert.deepEqual(profile.agents.x, shipped[name ?? ''], `${name ?? ''}: the docs show its profile`);
    }
  });

  it('accepts the test agents file', () => {
    const file = loadAgentsFile(resolve(ROOT, 'test/agents/agents.yaml'));
    assert.equal(file.defaultAgent, 'stand-in');
    assert.equal(file.agents['stand-in-arg']?.prompt, 'arg');
  });
});
