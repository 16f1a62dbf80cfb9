import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Runs git in `cwd` with a fixed test identity and returns its trimmed output. */
export const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim();

/** Makes a git repository at `path` on branch main with one commit (a README). */
export function initRepo(path: string): void {
  execFileSync('git', ['init', '--quiet', '-b', 'main', path]);
  writeFileSync(join(path, 'README.md'), 'hello\n');
  git(path, 'add', '-A');
  git(path, 'commit', '--quiet', '-m', 'initial');
}
