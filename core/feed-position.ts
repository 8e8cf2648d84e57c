import { NitrogenError } from './errors.js';
import type { FeedPosition } from './ports/store.js';

/**
 * The feed position of stores whose feed is a numbered sequence of records, each holding
 * several messages (the shared stores): the record's number and the index of the last message
 * read in it, written `"<seq>:<index>"`. Shared here so each adapter does not spell it again.
 */
export interface RecordPosition {
  seq: number;
  index: number;
}

export function parseRecordPosition(position: FeedPosition | null): RecordPosition {
  if (position === null) return { seq: 0, index: -1 };
  const match = /^(\d{1,15}):(-1|\d{1,9})$/.exec(position);
  if (!match) throw new NitrogenError('NITROGEN_ERR_VALIDATION', `feed position '${position.slice(0, 40)}' was not issued by this store`);
  return { seq: Number(match[1]), index: Number(match[2]) };
}

export function formatRecordPosition(p: RecordPosition): FeedPosition {
  return `${p.seq}:${p.index}`;
}

/** The earliest of several positions, or null when one of them is null (the very start). */
export function earliestRecordPosition(positions: (FeedPosition | null)[]): RecordPosition | null {
  let min: RecordPosition | undefined;
  for (const position of positions) {
    if (position === null) return null;
    const p = parseRecordPosition(position);
    if (!min || p.seq < min.seq || (p.seq === min.seq && p.index < min.index)) min = p;
  }
  return min ?? null;
}
