import type { z } from 'zod';
import { NitrogenError } from '../../core/errors.js';

type Issue = z.core.$ZodIssue;

/**
 * How a zod issue is named to a client (`details.field` and the message's prefix), keeping the
 * names the API has always used: `name` for a field of the body, `[3].type` for a field of a
 * batch's fourth entry, `body` for the body as a whole. A list's entries are named by the list
 * (`tags`, not `tags[2]`). `root` prefixes the name, as registration does (`body.type`).
 */
function fieldName(path: readonly PropertyKey[], root?: string): string {
  let name = '';
  let keySeen = false;
  for (const segment of path) {
    if (typeof segment === 'number') {
      if (keySeen) break;
      name += `[${segment}]`;
    } else {
      name += name === '' ? String(segment) : `.${String(segment)}`;
      keySeen = true;
    }
  }
  if (root === undefined) return name === '' ? 'body' : name;
  return name === '' ? root : name.startsWith('[') ? `${root}${name}` : `${root}.${name}`;
}

/** An unknown field is told first, as a typo explains the rest; otherwise the first issue in field order. */
function firstIssue(issues: readonly Issue[]): Issue {
  return issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0]!;
}

function validationError(issues: readonly Issue[], root?: string): NitrogenError {
  const issue = firstIssue(issues);
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = fieldName(path, root);
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${field}: ${issue.message}`, { details: { field } });
}

/** Parses `value` with `schema`, or throws 400 NITROGEN_ERR_VALIDATION naming the field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationError(result.error.issues, root);
}

/** How a route reads its JSON body: `schema` is what the OpenAPI document shows, `parse` what runs. */
export interface BodySpec<T> {
  schema: z.ZodType;
  parse(value: unknown): T;
}

/**
 * A body parsed with its schema. With `whole`, any issue is reported as the body's (`body: <whole>`):
 * for a body whose parts mean nothing alone, such as credentials.
 */
export function jsonBody<S extends z.ZodType>(schema: S, options: { root?: string; whole?: string } = {}): BodySpec<z.output<S>> {
  const { root, whole } = options;
  return {
    schema,
    parse(value) {
      if (whole === undefined) return parseWith(schema, value, root);
      const result = schema.safeParse(value);
      if (result.success) return result.data;
      throw new NitrogenError('NITROGEN_ERR_VALIDATION', `body: ${whole}`, { details: { field: 'body' } });
    },
  };
}
