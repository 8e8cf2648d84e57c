import type { MessageRow } from './schema.js';

/** Requests the store sends to its writer thread; each gets one reply with the same `id`. */
export type WriterRequest =
  | { id: number; op: 'append'; rows: MessageRow[] }
  | { id: number; op: 'checkpoint'; consumer: string; position: number }
  | { id: number; op: 'purge'; now: number; olderThan: number | null; upTo: number };

export type WriterReply = { id: number; ok: true; result?: number } | { id: number; ok: false; error: string; code?: string };

export interface WriterData {
  file: string;
}
