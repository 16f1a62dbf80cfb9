/** Keys no body of this API has, that object-mapping code treats specially: refused outright. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The paths of forbidden keys met inside an object being parsed, relative to it. A reviver sees a key
 * only after everything inside its value, and not where that value sits: each key's paths are handed
 * to its holder, and so climb to the body, which is refused naming them all.
 */
const foundInside = new WeakMap<object, string[]>();

/**
 * body-parser `reviver`: a body with a key such as `constructor`, anywhere (a label's key too), is a 400
 * whose message names where it is (`labels.constructor: ...`). The validation pipe's unknown-field check
 * cannot see these keys, since every object already has them.
 */
export function rejectForbiddenKeys(this: object, key: string, value: unknown): unknown {
  const inside = (typeof value === 'object' && value !== null && foundInside.get(value)) || [];
  const found = [...(FORBIDDEN_KEYS.has(key) ? [key] : []), ...inside.map((path) => `${key}.${path}`)];
  if (found.length === 0) return value;
  // The body itself comes last, as the key '' of a holder of its own.
  if (key === '' && Object.keys(this).length === 1) {
    const problem = 'the keys constructor, prototype and __proto__ are not accepted, anywhere in a body';
    throw new SyntaxError(inside.map((path) => `${path}: ${problem}`).join('; '));
  }
  foundInside.set(this, [...(foundInside.get(this) ?? []), ...found]);
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
