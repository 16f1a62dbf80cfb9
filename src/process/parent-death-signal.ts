import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

/**
 * argv prefix that makes the kernel send `signal` to a child when its parent dies, even by SIGKILL
 * (util-linux `setpriv --pdeathsig`, then exec). Empty where setpriv is missing: there the child
 * outlives a killed parent, as it would anyway.
 */
export const parentDeathPrefix = (signal: 'KILL' | 'TERM'): string[] =>
  existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', signal, '--'] : [];
