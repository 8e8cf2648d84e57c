import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Parses `"500ms"`, `"30s"`, `"15m"`, `"1h"`, `"1d"`; a bare number is milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`duration must be a non-negative number, got ${value}`);
    return value;
  }
  const match = PATTERN.exec(value.trim());
  if (!match) throw new RangeError(`'${value}' is not a duration like 500ms, 30s, 15m, 1h or 1d`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** A zod schema for durations in configuration: `"30s"`, `"1d"` or milliseconds. */
export const duration = z.union([z.string(), z.number()]).refine((value) => {
  try {
    parseDuration(value);
    return true;
  } catch {
    return false;
  }
}, 'must be a duration such as 500ms, 30s, 15m, 1h or 1d');

/** True when `value` is a duration of at least `min` ms; false (not a throw) for a bad one, which `duration` reports. */
export function durationAtLeast(value: string | number, min: number): boolean {
  try {
    return parseDuration(value) >= min;
  } catch {
    return true;
  }
}
