import { NitrogenError } from './errors.js';

/**
 * Opaque paging cursors: base64url JSON of the sort key of the last item returned.
 * Keyset paging (WHERE key > last) stays correct while items are inserted, unlike offsets.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string, shape: readonly ('string' | 'number')[]): (string | number)[] {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== shape.length || key.some((v, i) => typeof v !== shape[i])) {
    throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued', { details: { field: 'cursor' } });
  }
  return key as (string | number)[];
}
