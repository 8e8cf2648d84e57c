import { createHash, randomInt } from 'node:crypto';
import { requireAllowed } from './access.js';
import { grantOwner } from './api-keys.js';
import type { Authenticator, Origin } from './authenticator.js';
import { CredentialLimiter, type FailureLimits } from './credential-limiter.js';
import { parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { Identity } from './ports/identity.js';
import { publicPrincipal, type Principal } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';

const CLAIM_CODES = 'claim-codes';

// Crockford's base32: no I, L, O or U, so a code read off a label is typed back right; 10 of
// them are 50 bits (docs/security.md, "Onboarding", gives what that means against guessing).
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CODE_LENGTH = 10;

/** A claim code as a person types it: any case, with or without the dash, I and L for 1, O for 0. */
function normalizeClaimCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
}

/** The record key of a code: its digest, so the registry holds no usable code. */
function codeKey(code: string): string {
  return createHash('sha256').update(normalizeClaimCode(code)).digest('hex');
}

interface StoredCode {
  device: string;
  issuedAt: string;
  expiresAt: string;
}

export interface ClaimCode {
  /** `XXXXX-XXXXX`, shown on the device's display or printed on its label. */
  code: string;
  expiresAt: string;
}

/**
 * Claim codes: a short code a device shows, which a person enters to become its owner (they are
 * granted `admin` on it), once, before the code expires (`devices.claimCodeTtl`). A device holds
 * one code at a time: a new one replaces the old. Codes are short enough to type, so they can be
 * guessed: failed claims are limited per claiming principal and per address
 * (`devices.claimAttempts`), an unknown, expired or used code are refused alike, and only a
 * digest of each code is stored.
 *
 * Throws NITROGEN_ERR_FORBIDDEN (a device claims nothing), NITROGEN_ERR_CLAIM_CODE_INVALID and
 * NITROGEN_ERR_RATE_LIMITED.
 */
export class ClaimCodes {
  private readonly limiter: CredentialLimiter;
  private readonly ttlMs: number;

  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly authenticator: Authenticator,
    private readonly events: PrincipalEvents,
    options: { claimCodeTtl: string | number; claimAttempts: FailureLimits },
    logger: Logger,
  ) {
    this.limiter = new CredentialLimiter(options.claimAttempts, logger);
    this.ttlMs = parseDuration(options.claimCodeTtl);
  }

  /** A new code for `device`, replacing any it had. */
  async issue(device: string): Promise<ClaimCode> {
    const old = await this.registry.listRecords(CLAIM_CODES, { principal: device }, { limit: 10 });
    for (const record of old.items) await this.registry.deleteRecord(CLAIM_CODES, record.key);
    const now = Date.now();
    const expiresAt = new Date(now + this.ttlMs).toISOString();
    for (;;) {
      let code = '';
      for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
      const value: StoredCode = { device, issuedAt: new Date(now).toISOString(), expiresAt };
      try {
        await this.registry.createRecord({ kind: CLAIM_CODES, key: codeKey(code), principal: device, value });
        return { code: `${code.slice(0, 5)}-${code.slice(5)}`, expiresAt };
      } catch (err) {
        // Another device holds this code now: draw again.
        if (!(err instanceof NitrogenError && err.code === 'NITROGEN_ERR_CONFLICT')) throw err;
      }
    }
  }

  /** A new code for `device`, asked by the device itself or by a principal holding `admin` on it. */
  async issueFor(actor: Principal, device: string): Promise<ClaimCode> {
    if (actor.id !== device) requireAllowed(this.identity, actor, 'admin', device);
    const record = await this.registry.getPrincipal(device);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${device}'`);
    if (record.type !== 'device') throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'id: only devices are claimed', { details: { field: 'id' } });
    return this.issue(device);
  }

  /** `actor` becomes an owner of the device showing `code`: it is granted `admin` on it. */
  async claim(actor: Principal, code: string, origin: Origin): Promise<Principal> {
    if (actor.type === 'device') throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'a device claims nothing');
    return this.authenticator.limited(
      'claim-code',
      actor.id,
      origin,
      async () => {
        const key = codeKey(code);
        const record = await this.registry.getRecord(CLAIM_CODES, key);
        const stored = record?.value as StoredCode | undefined;
        if (!stored || Date.parse(stored.expiresAt) <= Date.now()) {
          if (stored) await this.registry.deleteRecord(CLAIM_CODES, key);
          throw invalid();
        }
        // Deleting is the claim: of two people entering the same code at once, one deletes it.
        if (!(await this.registry.deleteRecord(CLAIM_CODES, key))) throw invalid();
        const device = await this.registry.getPrincipal(stored.device);
        if (!device) throw invalid();
        await grantOwner({ registry: this.registry, identity: this.identity, events: this.events }, actor.id, device.id, ['admin']);
        return publicPrincipal(device);
      },
      { limiter: this.limiter, failures: ['NITROGEN_ERR_CLAIM_CODE_INVALID'] },
    );
  }
}

function invalid(): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_CLAIM_CODE_INVALID', 'unknown, expired or already used claim code');
}
