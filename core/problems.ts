import type { ZodType, core } from 'zod';
import { NitrogenError, type ErrorCode } from './errors.js';

/**
 * Configuration problems as a person can act on them: each names the field by its path, and
 * an unknown key close to a known one gets a "did you mean". Every problem of a configuration
 * is reported at once, so a start that fails is fixed in one edit, not one field per attempt.
 */
export function describeIssues(schema: ZodType, issues: readonly core.$ZodIssue[], prefix: readonly (string | number)[] = []): string[] {
  return issues.flatMap((issue) => {
    const at = (path: readonly PropertyKey[]) => [...prefix, ...path].map(String).join('.') || '(root)';
    if (issue.code !== 'unrecognized_keys') return [`${at(issue.path)}: ${issue.message}`];
    const known = knownKeys(schema, issue.path);
    return issue.keys.map((key) => `${at([...issue.path, key])}: ${unknownKey(key, known)}`);
  });
}

/** One NitrogenError for every problem found; `details.problems` lists them one by one. */
export function problemsError(code: ErrorCode, source: string, problems: string[]): NitrogenError {
  return new NitrogenError(code, `invalid ${source}: ${problems.join('; ')}`, { details: { source, problems } });
}

function unknownKey(key: string, known: string[]): string {
  const close = closest(key, known);
  if (close) return `unknown key; did you mean "${close}"?`;
  return known.length > 0 && known.length <= 24 ? `unknown key (known: ${known.join(', ')})` : 'unknown key';
}

/** The known key nearest to `key`, if it is near enough to be a slip of the fingers. */
function closest(key: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  // One slip in a short name, two in a longer one; beyond that the suggestion is a guess.
  return best && best.distance <= (key.length < 5 ? 1 : 2) ? best.name : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return Infinity;
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The keys the object schema at `path` knows, looking through defaults, optionals, pipes and arrays. */
function knownKeys(schema: ZodType, path: readonly PropertyKey[]): string[] {
  let at: core.$ZodType | undefined = schema;
  for (const step of [...path, undefined]) {
    at = unwrap(at);
    if (!at) return [];
    const def = at._zod.def as core.$ZodTypeDef & { shape?: Record<string, core.$ZodType>; element?: core.$ZodType; valueType?: core.$ZodType };
    if (step === undefined) return def.shape ? Object.keys(def.shape) : [];
    if (def.type === 'object') at = def.shape?.[String(step)];
    else if (def.type === 'array') at = def.element;
    else if (def.type === 'record') at = def.valueType;
    else return [];
  }
  return [];
}

function unwrap(schema: core.$ZodType | undefined): core.$ZodType | undefined {
  for (let at = schema, hops = 0; at && hops < 16; hops++) {
    const def = at._zod.def as core.$ZodTypeDef & { innerType?: core.$ZodType; in?: core.$ZodType };
    if (def.innerType) at = def.innerType;
    else if (def.type === 'pipe' && def.in) at = def.in;
    else return at;
  }
  return undefined;
}
