const NodeBuffer = (globalThis as { Buffer?: { byteLength(s: string, encoding: 'utf8'): number } }).Buffer;

/** Bytes of `s` in UTF-8: Node's native count where there is one, else counted here (browsers). */
export const utf8Length: (s: string) => number = NodeBuffer
  ? (s) => NodeBuffer.byteLength(s, 'utf8')
  : (s) => {
      let n = s.length;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) continue;
        if (c < 0x800) n += 1;
        else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          n += 2; // a surrogate pair: 4 bytes for 2 units
          i++;
        } else n += 2;
      }
      return n;
    };
