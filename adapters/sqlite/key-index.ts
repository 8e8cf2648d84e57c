/** FNV-1a over the UTF-16 units of `from`, a separator, then `id`: the hash of an idempotency key. */
export function keyHash(from: string, id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < from.length; i++) h = Math.imul(h ^ from.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xffff, 0x01000193);
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** What a KeyIndex's references stand for: tells whether the one at `ref` has this key. */
export interface KeySource {
  hasKey(ref: number, from: string, id: string): boolean;
}

/**
 * A hash set of references (non-negative numbers: sequence numbers, array indexes) by the
 * 32-bit hash of their key; a candidate is confirmed by its KeySource comparing the keys
 * themselves, so hash collisions cost a comparison, never a wrong answer. Open addressing with linear
 * probing and backward-shift deletion in typed arrays: tens of nanoseconds per operation, and
 * nothing for the garbage collector to walk, where a Map of 200,000 string keys costs about a
 * microsecond per insert and delete.
 */
export class KeyIndex {
  private refs!: Float64Array;
  private hashes!: Uint32Array;
  private mask = 0;
  private count = 0;

  constructor(capacity = 1024) {
    this.allocate(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** The reference to the key (from, id), whose hash is `hash`, or -1. */
  find(hash: number, from: string, id: string, source: KeySource): number {
    const { refs, hashes, mask } = this;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const ref = refs[i]!;
      if (ref < 0) return -1;
      if (hashes[i] === hash && source.hasKey(ref, from, id)) return ref;
    }
  }

  add(hash: number, ref: number): void {
    if ((this.count + 1) * 2 > this.refs.length) this.grow();
    const { refs, hashes, mask } = this;
    let i = hash & mask;
    while (refs[i]! >= 0) i = (i + 1) & mask;
    refs[i] = ref;
    hashes[i] = hash;
    this.count++;
  }

  remove(hash: number, ref: number): void {
    const { refs, hashes, mask } = this;
    let i = hash & mask;
    while (refs[i] !== ref) {
      if (refs[i]! < 0) return;
      i = (i + 1) & mask;
    }
    // Backward shift: pull later entries of the probe run into the hole, so lookups never stop early.
    for (let j = (i + 1) & mask; refs[j]! >= 0; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        refs[i] = refs[j]!;
        hashes[i] = hashes[j]!;
        i = j;
      }
    }
    refs[i] = -1;
    this.count--;
  }

  clear(): void {
    if (this.count > 0) this.refs.fill(-1);
    this.count = 0;
  }

  private allocate(capacity: number): void {
    let slots = 16;
    while (slots < capacity * 2) slots *= 2;
    this.refs = new Float64Array(slots).fill(-1);
    this.hashes = new Uint32Array(slots);
    this.mask = slots - 1;
  }

  private grow(): void {
    const { refs, hashes } = this;
    this.allocate(refs.length);
    this.count = 0;
    for (let i = 0; i < refs.length; i++) if (refs[i]! >= 0) this.add(hashes[i]!, refs[i]!);
  }
}
