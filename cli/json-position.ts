/**
 * Where a configuration path (`sinks.0.options.url`) is in a JSON text, as line and column
 * (1-based), so `config check` can point at it in the file. The text has already parsed with
 * JSON.parse; this only walks it (RFC 8259 §2-§7) keeping offsets. A path that is not in the
 * text (a missing required key) gives the deepest part of it that is.
 */
export interface Position {
  line: number;
  column: number;
}

export function locate(text: string, path: string[]): Position | undefined {
  let i = 0;
  let best: { at: number; depth: number } | undefined;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  // `on`: this value is at path[0..depth) (false once off the path); `at`: where to point for it.
  const value = (on: boolean, depth: number, at: number): void => {
    ws();
    if (on && (!best || depth > best.depth)) best = { at: at < 0 ? i : at, depth };
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      while (text[i] !== '}') {
        ws();
        const keyAt = i;
        const key = string();
        ws();
        i++; // ':'
        value(on && depth < path.length && key === path[depth], depth + 1, keyAt);
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
    } else if (c === '[') {
      i++;
      ws();
      for (let index = 0; text[i] !== ']'; index++) {
        ws();
        value(on && depth < path.length && String(index) === path[depth], depth + 1, i);
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
    } else if (c === '"') string();
    else while (i < text.length && !',}] \t\r\n'.includes(text[i]!)) i++;
  };
  try {
    value(true, 0, -1);
  } catch {
    return undefined;
  }
  if (!best) return undefined;
  const before = text.slice(0, best.at).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}
