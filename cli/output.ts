/**
 * What commands print: tables for people by default, the JSON of the answer with `--json` for
 * scripts. Results go to stdout; notes (the next page's cursor, where a file went) to stderr, so
 * a pipe gets only the result.
 */
export interface Column<T> {
  header: string;
  value(row: T): unknown;
}

export class Output {
  constructor(readonly json: boolean) {}

  /** With `--json` the value as it is (one JSON document); else `human()` is printed. */
  result(value: unknown, human: () => string): void {
    process.stdout.write(this.json ? JSON.stringify(value, null, 2) + '\n' : human());
  }

  /** One JSON value on one line (NDJSON: `messages tail --json`). */
  line(value: unknown): void {
    process.stdout.write(JSON.stringify(value) + '\n');
  }

  text(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  note(text: string): void {
    process.stderr.write(text + '\n');
  }
}

/** A cell as text: absent is `-`, arrays join with commas, objects are compact JSON; one line always. */
export function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) return value.length ? value.join(',') : '-';
  // Objects as JSON; what is left is a primitive, whose String() is its text.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- value is not an object here
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return text.replace(/[\r\n\t]/g, ' ');
}

/** Rows as aligned columns under upper-case headers; an empty list says so. */
export function table<T>(rows: T[], columns: Column<T>[], empty = '(none)'): string {
  if (rows.length === 0) return empty + '\n';
  const cells = [columns.map((c) => c.header.toUpperCase()), ...rows.map((row) => columns.map((c) => cell(c.value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return (
    cells
      .map((r) =>
        r
          .map((text, i) => (i === r.length - 1 ? text : text.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Field: value lines for one record. */
export function record(fields: Array<[string, unknown]>): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${(k + ':').padEnd(width + 1)} ${cell(v)}`).join('\n') + '\n';
}
