import { CliError } from './exit-codes.js';

/**
 * CSV as RFC 4180 writes it (fields in double quotes may hold commas, quotes doubled, and line
 * breaks), with LF or CRLF lines and blank lines skipped. The first record is the header,
 * lower-cased; each row keeps the line it starts on, to report by. Bounded: a file of at most 16 MiB, records of at most 64 fields.
 */
export function parseCsv(text: string): { header: string[]; rows: Array<{ line: number; cells: string[] }> } {
  if (text.length > 16 * 1024 * 1024) throw new CliError('usage', 'CSV: larger than 16 MiB; split it');
  const records: Array<{ line: number; cells: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  const endField = () => {
    fields.push(field);
    field = '';
    if (fields.length > 64) throw new CliError('usage', `CSV line ${line}: more than 64 fields`);
  };
  const endRecord = () => {
    endField();
    if (fields.length > 1 || fields[0] !== '') records.push({ line: start, cells: fields });
    fields = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        // Line breaks inside a field count as the file's lines do: CRLF, CR or LF.
        if (c === '\r' || (c === '\n' && text[i - 1] !== '\r')) line++;
        field += c;
      }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') endField();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      start = ++line;
    } else field += c;
  }
  if (quoted) throw new CliError('usage', `CSV line ${line}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRecord();
  const [header, ...rows] = records;
  if (!header) throw new CliError('usage', 'CSV: the file is empty; the first line names the columns');
  return { header: header.cells.map((h) => h.trim().toLowerCase()), rows };
}
