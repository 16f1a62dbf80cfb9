#!/usr/bin/env node
// Deterministic stand-in for an agent CLI, used by the tests and benchmarks through the same code path
// as real agents. The prompt (last argument, or stdin when there is none) is data; lines starting with
// "@" are directives, run in order:
//   @print TEXT          a line on stdout          @stderr TEXT      a line on stderr
//   @sleep SECONDS       wait                      @exit CODE        exit now with CODE
//   @hang                never finish, print nothing
//   @ignore-term         ignore SIGTERM (the runner must escalate to SIGKILL)
//   @fail-until N FILE   count runs in FILE; exit 1 while the count is below N
//   @spawn-child FILE    start a grandchild that sleeps, write its pid to FILE
//   @pidfile FILE        write this process's pid to FILE
//   @echo-env NAME       print NAME=value of an environment variable (or NAME unset)
//   @bytes N             print N bytes of output
// A prompt without directives is echoed back on stdout.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const readStdin = () => {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
};

const prompt = process.argv.length > 2 ? process.argv[process.argv.length - 1] : readStdin();
const lines = prompt.split('\n');
const directives = lines.filter((l) => l.startsWith('@'));
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

if (directives.length === 0) {
  process.stdout.write(prompt.endsWith('\n') ? prompt : `${prompt}\n`);
  process.exit(0);
}

for (const line of directives) {
  const [name, ...rest] = line.split(' ');
  const arg = rest.join(' ');
  switch (name) {
    case '@print':
      process.stdout.write(`${arg}\n`);
      break;
    case '@stderr':
      process.stderr.write(`${arg}\n`);
      break;
    case '@sleep':
      await sleep(Number(arg));
      break;
    case '@exit':
      process.exit(Number(arg));
      break;
    case '@hang':
      setInterval(() => undefined, 1 << 30);
      await new Promise(() => undefined);
      break;
    case '@ignore-term':
      process.on('SIGTERM', () => undefined);
      break;
    case '@fail-until': {
      const [n, file] = rest;
      let count = 0;
      try {
        count = Number(readFileSync(file, 'utf8')) || 0;
      } catch {
        // first run
      }
      count += 1;
      writeFileSync(file, String(count));
      if (count < Number(n)) {
        process.stderr.write(`failing run ${count} of ${Number(n) - 1}\n`);
        process.exit(1);
      }
      break;
    }
    case '@spawn-child': {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
      writeFileSync(arg, String(child.pid));
      break;
    }
    case '@pidfile':
      writeFileSync(arg, String(process.pid));
      break;
    case '@echo-env':
      process.stdout.write(arg in process.env ? `${arg}=${process.env[arg]}\n` : `${arg} unset\n`);
      break;
    case '@bytes':
      process.stdout.write('x'.repeat(Number(arg)));
      break;
    default:
      process.stderr.write(`unknown directive ${name}\n`);
      process.exit(2);
  }
}
process.exit(0);
