/**
 * Message ids made by the client: 12 hex digits of milliseconds since the epoch, 4 of a counter
 * within the millisecond and 16 random ones, the shape of the server's own ids (docs/api.md,
 * "Ids"). An id is the message's idempotency key with the server, so it must be new for every
 * message of this principal in every process that will ever run as it, including the same
 * device after a reboot: the time and 64 random bits see to that. Ids of one process sort in
 * the order they were made.
 *
 * Random bytes are drawn and hex-encoded 512 ids at a time, and the time prefix is kept while
 * the millisecond lasts: an id costs a slice and two concatenations.
 */
const IDS_PER_POOL = 512;
const pool = new Uint8Array(IDS_PER_POOL * 8);
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let randomHex = '';
let used = IDS_PER_POOL;
let lastMs = -1;
let msHex = '';
let counter = 0;

function refill(): void {
  globalThis.crypto.getRandomValues(pool);
  let hex = '';
  for (let i = 0; i < pool.length; i++) hex += HEX[pool[i]!]!;
  randomHex = hex;
  used = 0;
}

export function newMessageId(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    msHex = ms.toString(16).padStart(12, '0');
    counter = 0;
  } else counter = (counter + 1) & 0xffff;
  if (used === IDS_PER_POOL) refill();
  const at = used++ * 16;
  return msHex + HEX[counter >> 8]! + HEX[counter & 0xff]! + randomHex.slice(at, at + 16);
}
