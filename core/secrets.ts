import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

// Stretching adds nothing to a random 256-bit secret (docs/architecture.md, "Identity"), so server-made secrets
// are kept as a plain SHA-256 digest: verifying 30,000 connecting cars costs microseconds each.
const SECRET_BYTES = 32;
// scrypt for secrets a person chose: N=2^15, r=8 (about 32 MiB and tens of ms per check).
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };

/** A stored digest, parsed: what verifying a secret against it takes. */
export type Digest = { kind: 'sha256'; expected: Buffer } | { kind: 'scrypt'; N: number; r: number; p: number; salt: Buffer; key: Buffer } | { kind: 'none' };

export function newSecret(): { secret: string; secretHash: string } {
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { secret, secretHash: sha256Hash(secret) };
}

export function sha256Hash(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret).digest('hex');
}

/** `sha256:<hex>` or `scrypt:<N>:<r>:<p>:<salt>:<key>`; anything else matches no secret. */
export function parseDigest(secretHash: string | undefined): Digest {
  const parts = (secretHash ?? '').split(':');
  if (parts[0] === 'sha256' && parts.length === 2) return { kind: 'sha256', expected: Buffer.from(parts[1]!, 'hex') };
  if (parts[0] === 'scrypt' && parts.length === 6) {
    const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
    return { kind: 'scrypt', N: Number(n), r: Number(r), p: Number(p), salt: Buffer.from(salt, 'base64url'), key: Buffer.from(key, 'base64url') };
  }
  return { kind: 'none' };
}

/** Constant-time comparison of a secret with a SHA-256 digest. */
export function sha256Matches(secret: string, expected: Buffer): boolean {
  const actual = createHash('sha256').update(secret).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * A new scrypt digest of `password`. Synchronous on purpose: it runs on a password-hashing
 * thread (core/password-worker.ts), never on the main thread nor on libuv's pool, which the
 * store's durable writes use.
 */
export function scryptDigestSync(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, SCRYPT.keylen, SCRYPT);
  return `scrypt:${SCRYPT.N}:${SCRYPT.r}:${SCRYPT.p}:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

/** Whether `password` matches an scrypt digest, in constant time; synchronous like scryptDigestSync. */
export function scryptMatchesSync(password: string, digest: Extract<Digest, { kind: 'scrypt' }>): boolean {
  const actual = scryptSync(password, digest.salt, digest.key.length, { N: digest.N, r: digest.r, p: digest.p, maxmem: SCRYPT.maxmem });
  return timingSafeEqual(digest.key, actual);
}
