/** A JSON value, as twin documents hold them. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Applies a JSON merge patch (RFC 7396 §2): an object patches member by member, `null` removes
 * a member, anything else replaces the target whole. Returns a new value; neither input changes.
 */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function equal(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  return aKeys.every((key) => equal((a as Record<string, Json>)[key], (b as Record<string, Json>)[key]));
}

/**
 * What `desired` holds that `reported` does not, as a merge patch that would bring reported to
 * desired for those members (members only reported are left alone); undefined when nothing differs.
 */
export function difference(desired: Json, reported: Json | undefined): Json | undefined {
  if (!isObject(desired)) return equal(desired, reported) ? undefined : desired;
  const base = isObject(reported) ? reported : {};
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(desired)) {
    const diff = difference(value, base[key]);
    if (diff !== undefined) out[key] = diff;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
