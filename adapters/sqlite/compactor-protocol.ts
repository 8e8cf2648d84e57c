/** What the store tells its compactor thread; requests with an `id` get one reply each. */
export type CompactorRequest =
  /** Frames that became durable, in order, as [offset in the ring, length, first seq, last seq]. */
  | { op: 'durable'; frames: Array<[number, number, number, number]> }
  | { op: 'compact'; id: number }
  | { op: 'checkpoint'; id: number; consumer: string; position: number }
  | { op: 'purge'; id: number; now: number; olderThan: number; upTo: number }
  | { op: 'close'; id: number };

/** What the compactor thread tells the store. */
export type CompactorEvent =
  | { op: 'ready'; nextSeq: number; recovered: number; migrated: number }
  | { op: 'compacted'; seq: number }
  | { op: 'failed'; error: string; fatal: boolean }
  | { op: 'reply'; id: number; ok: true; result?: number }
  | { op: 'reply'; id: number; ok: false; error: string; code?: string };

export interface CompactorOptions {
  /** The database file. */
  file: string;
  /** The journal directory. */
  journal: string;
  /** The ring the store encodes frames into (ring.ts). */
  ring: SharedArrayBuffer;
  /** Compact as soon as this many bytes of durable frames wait. */
  compactBytes: number;
  /** ...or once the first of them has waited this long. */
  compactDelayMs: number;
}
