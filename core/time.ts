/**
 * ISO-8601 date-times as Nitrogen accepts them: a date, or a date and time with `Z` or an
 * offset. A time without an offset would depend on the server's time zone, so it is refused.
 */
export const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Milliseconds since the epoch, or NaN when `value` is not an ISO-8601 time in years 1970–9999. */
export function parseIsoTime(value: unknown): number {
  if (typeof value !== 'string' || value.length > 40 || !ISO_8601.test(value)) return NaN;
  // Date.parse rolls 2026-02-30 over into March: the day must exist in its month.
  const [year, month, day] = [Number(value.slice(0, 4)), Number(value.slice(5, 7)), Number(value.slice(8, 10))];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return NaN;
  const ms = Date.parse(value.replace(',', '.'));
  // Within 1970-9999, ISO strings sort as the times they name, which stores rely on.
  return ms >= 0 && ms <= MAX_TIME ? ms : NaN;
}
