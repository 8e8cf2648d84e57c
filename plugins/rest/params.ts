import type { z } from 'zod';
import { NitrogenError } from '../../core/errors.js';

type Query = Record<string, string | string[] | undefined>;

function invalid(name: string, message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${name}: ${message}`, { details: { field: name } });
}

interface Wrapper {
  def: { type: string; innerType?: Wrapper; in?: Wrapper };
}

/** Whether a parameter's schema takes a list (under optional, default, pipe): its values may be repeated or comma-separated. */
export function isList(schema: z.ZodType): boolean {
  let current: Wrapper | undefined = schema;
  while (current) {
    const def: Wrapper['def'] = current.def;
    if (def.type === 'array') return true;
    current = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  }
  return false;
}

/**
 * Reads a query string with the route's schema, one parameter at a time in the schema's order,
 * so the first bad parameter is the one named. A parameter the schema does not know is refused,
 * so a typo is not silently ignored; a list takes repeated (`from=a&from=b`) or comma-separated
 * (`from=a,b`) values; any other parameter may be given once.
 */
export function parseQuery<S extends z.ZodObject>(schema: S, query: Query): z.output<S> {
  const shape = schema.shape as Record<string, z.ZodType>;
  const known = Object.keys(shape);
  for (const name of Object.keys(query)) if (!Object.hasOwn(shape, name)) throw invalid(name, `is not a parameter here (known: ${known.join(', ')})`);
  const parsed: Record<string, unknown> = {};
  for (const name of known) {
    const field = shape[name]!;
    const raw = query[name];
    const list = isList(field);
    let value: string | string[] | undefined;
    if (raw === undefined) value = undefined;
    else if (list) value = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(','));
    else if (Array.isArray(raw)) throw invalid(name, 'may be given once');
    else value = raw;
    const result = field.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const at = issue.path[0];
      throw invalid(name, list && Array.isArray(value) && typeof at === 'number' ? `'${value[at]}' is not valid` : issue.message);
    }
    if (result.data !== undefined) parsed[name] = result.data;
  }
  return parsed as z.output<S>;
}
