/** Keys no body of this API has, that object-mapping code treats specially: refused outright. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * body-parser `reviver`: a body with a key such as `constructor` is a 400. The validation pipe's
 * unknown-field check cannot see these keys, since every object already has them.
 */
export function rejectForbiddenKeys(key: string, value: unknown): unknown {
  if (FORBIDDEN_KEYS.has(key)) throw new SyntaxError(`property ${key} should not exist`);
  return value;
}

/** Deeper than any body this API takes: labels, the deepest part, are an object of strings. */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of JSON text, counted over brackets outside strings without parsing it. */
export function jsonDepth(text: Buffer): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/**
 * body-parser `verify` hook: refuses deeply nested JSON with a 400 before it is parsed, so validation
 * (which walks the value recursively) never meets a structure deep enough to overflow its stack.
 */
export function rejectDeepJson(_req: unknown, _res: unknown, body: Buffer): void {
  if (jsonDepth(body) > MAX_JSON_DEPTH) {
    throw Object.assign(new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), {
      status: 400,
      type: 'entity.too.deep',
    });
  }
}
