import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';

const names = new Map<string, string>();

/**
 * A statement that each connection parses and plans once, then only executes: for the few statements
 * every task runs, whose planning costs PostgreSQL more than running them. Named by a hash of the
 * text, so two statements never share a name. Give it constant text only (values go in `values`):
 * each distinct text is remembered here and on every connection that runs it.
 */
export function prepared(text: string, values: unknown[] = []): QueryConfig {
  let name = names.get(text);
  if (name === undefined) {
    name = `atelier_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return { name, text, values };
}
