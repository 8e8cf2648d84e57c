/**
 * How deeply a JSON text nests, told from the text alone, before anything parses or encodes it.
 *
 * Why: `JSON.parse` in V8 is iterative and takes any depth, but `JSON.stringify` recurses, and
 * so do most consumers of the JSON we serve. A body of 50,000 nested arrays parses, is stored,
 * and then no response holding it can be encoded (a stack overflow). Refusing excessive depth
 * where every payload is parsed keeps such a body out of the store; scanning the text first also
 * refuses `[[[[…` of many megabytes after `maxDepth + 1` characters, before the parser allocates
 * an array per bracket.
 *
 * Depth counts arrays and objects: a scalar is 0, `[]` and `{}` are 1, `{"a":[1]}` is 2.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when `text` nests arrays and objects more than `maxDepth` deep. Exact for valid JSON;
 * for invalid JSON the answer does not matter, since the parser refuses it anyway.
 *
 * The MQTT hot path calls this for every payload, so it first rules out, without a loop of its
 * own, what cannot fail: depth d needs d opening and d closing brackets, so a text of at most
 * 2·maxDepth characters, or with at most maxDepth opening brackets anywhere, passes.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  if (text.length <= 2 * maxDepth) return false;
  if (countUpTo(text, '[', maxDepth + 1) + countUpTo(text, '{', maxDepth + 1) <= maxDepth) return false;
  return scan(text, maxDepth);
}

/** Occurrences of `char` in `text`, counted up to `cap` (indexOf runs in native code). */
function countUpTo(text: string, char: string, cap: number): number {
  let count = 0;
  for (let at = text.indexOf(char); at !== -1 && count < cap; at = text.indexOf(char, at + 1)) count++;
  return count;
}

function scan(text: string, maxDepth: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = closingQuote(text, i);
      if (i === -1) return false; // an unterminated string: the parser refuses it
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote closing the string opened at `open`, or -1. Brackets inside strings do not nest. */
function closingQuote(text: string, open: number): number {
  // A loop of charCodeAt, not indexOf: most strings in JSON are short keys, and a native call
  // per string costs more than reading its few characters here.
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH)
      i++; // the escaped character cannot close the string (RFC 8259 §7)
    else if (c === QUOTE) return i;
  }
  return -1;
}
