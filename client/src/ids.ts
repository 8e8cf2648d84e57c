/**
 * Message ids made by the client: 12 hex digits of milliseconds since the epoch, 4 of a counter
 * within the millisecond and 16 random ones, the shape of the server's own ids (docs/api.md,
 * "Ids"). An id is the message's idempotency key with the server, so it must be new for every
 * message of this principal in every process that will ever run as it, including the same
 * device after a reboot: the time and 64 random bits see to that. Ids of one process sort in
 * the order they were made.
 */
const POOL_WORDS = 1024;
const pool = new Uint32Array(POOL_WORDS);
let poolAt = POOL_WORDS;
let lastMs = 0;
let counter = 0;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function newMessageId(): string {
  const ms = Date.now();
  if (ms === lastMs) counter = (counter + 1) & 0xffff;
  else {
    lastMs = ms;
    counter = 0;
  }
  if (poolAt === POOL_WORDS) {
    globalThis.crypto.getRandomValues(pool); // one call per 512 ids
    poolAt = 0;
  }
  const random = hex8(pool[poolAt]!) + hex8(pool[poolAt + 1]!);
  poolAt += 2;
  return ms.toString(16).padStart(12, '0') + counter.toString(16).padStart(4, '0') + random;
}
