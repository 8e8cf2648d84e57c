import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

// Stretching adds nothing to a random 256-bit secret (docs/architecture.md, "Identity"), so server-made secrets
// are kept as a plain SHA-256 digest: verifying 30,000 connecting cars costs microseconds each.
const SECRET_BYTES = 32;
// scrypt for secrets a person chose: N=2^15, r=8 (about 32 MiB and tens of ms per check).
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };

export function newSecret(): { secret: string; secretHash: string } {
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { secret, secretHash: sha256Hash(secret) };
}

export function sha256Hash(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret).digest('hex');
}

export async function scryptHash(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, SCRYPT);
  return `scrypt:${SCRYPT.N}:${SCRYPT.r}:${SCRYPT.p}:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

const DUMMY = sha256Hash('nitrogen-dummy-secret');

/**
 * Checks a secret against a stored digest in constant time. With no digest (unknown
 * principal) it still does the work, so timing does not tell unknown ids from wrong secrets.
 */
export async function verifySecret(secret: string, secretHash: string | undefined): Promise<boolean> {
  const hash = secretHash ?? DUMMY;
  const parts = hash.split(':');
  let ok = false;
  if (parts[0] === 'sha256' && parts.length === 2) {
    const expected = Buffer.from(parts[1]!, 'hex');
    const actual = createHash('sha256').update(secret).digest();
    ok = expected.length === actual.length && timingSafeEqual(expected, actual);
  } else if (parts[0] === 'scrypt' && parts.length === 6) {
    const [, n, r, p, salt, key] = parts as [string, string, string, string, string, string];
    const expected = Buffer.from(key, 'base64url');
    const actual = await scrypt(secret, Buffer.from(salt, 'base64url'), expected.length, {
      N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem,
    });
    ok = timingSafeEqual(expected, actual);
  }
  return ok && secretHash !== undefined;
}
