import { randomBytes } from 'node:crypto';
import { grantOwner, type ApiKeys } from './api-keys.js';
import type { Authenticator, Origin } from './authenticator.js';
import type { ClaimCode, ClaimCodes } from './claim-codes.js';
import type { Rate } from './device-options.js';
import { parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Identity } from './ports/identity.js';
import { publicPrincipal, type Principal, type PrincipalRecord } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';
import { TokenBuckets } from './token-buckets.js';

/** What a device sends to register itself; the rest comes from the key. */
export interface SelfRegistration {
  id?: string;
  name?: string;
  tags?: string[];
}

export interface SelfRegistered {
  principal: Principal;
  /** The device's secret: shown only here. */
  secret: string;
  /** For a person to claim the device, when the key says devices are claimable. */
  claimCode?: ClaimCode;
}

export interface RegistrationLimits {
  perKey: Rate;
  perAddress: Rate;
  maxTracked: number;
}

function buckets(rate: Rate, maxTracked: number): TokenBuckets {
  return new TokenBuckets(rate.count, rate.count / parseDuration(rate.per), maxTracked);
}

/**
 * A device (or a factory line) registers itself with its owner's API key, without any other
 * credential: the key is checked under the credential limits, and registrations that succeed are
 * limited per key and per address (`devices.registrations`), so a leaked key cannot fill the
 * registry faster than that. The device gets a server-made secret, the tags of the key, a grant
 * of the key's `grant` actions to the key's owner, and a claim code when the key says so.
 *
 * Throws NITROGEN_ERR_BAD_CREDENTIALS, NITROGEN_ERR_FORBIDDEN, NITROGEN_ERR_RATE_LIMITED and
 * NITROGEN_ERR_CONFLICT (a chosen id is taken).
 */
export class SelfRegistrations {
  private readonly perKey: TokenBuckets;
  private readonly perAddress: TokenBuckets;

  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly authenticator: Authenticator,
    private readonly apiKeys: ApiKeys,
    private readonly claimCodes: ClaimCodes,
    private readonly events: PrincipalEvents,
    limits: RegistrationLimits,
  ) {
    this.perKey = buckets(limits.perKey, limits.maxTracked);
    this.perAddress = buckets(limits.perAddress, limits.maxTracked);
  }

  async register(presentedKey: string, registration: SelfRegistration, origin: Origin): Promise<SelfRegistered> {
    const key = await this.apiKeys.verify(presentedKey, 'register', origin);
    const client = this.authenticator.addresses.resolve(origin.remoteAddress, origin.forwardedFor);
    const address = client.sharedProxy ? undefined : client.key;
    this.admit(key.id, address);
    const { secret, secretHash } = this.identity.newSecret();
    const record: PrincipalRecord = {
      id: registration.id ?? `device-${randomBytes(8).toString('hex')}`,
      type: 'device',
      tags: [...new Set([...key.deviceTags, ...(registration.tags ?? [])])],
      createdAt: new Date().toISOString(),
      enabled: true,
      secretHash,
    };
    if (registration.name !== undefined) record.name = registration.name;
    await this.registry.createPrincipals([record]);
    await grantOwner({ registry: this.registry, identity: this.identity, events: this.events }, key.owner, record.id, key.grant);
    const registered: SelfRegistered = { principal: publicPrincipal(record), secret };
    if (key.claimable) registered.claimCode = await this.claimCodes.issue(record.id);
    return registered;
  }

  /** Takes one registration from the key's and the address's allowance, or refuses with 429. */
  private admit(keyId: string, address: string | undefined): void {
    const now = Date.now();
    const keyWait = this.perKey.waitFor(keyId, 1, now);
    const addressWait = address === undefined ? 0 : this.perAddress.waitFor(address, 1, now);
    if (keyWait > 0 || addressWait > 0) {
      const limit = keyWait >= addressWait ? 'devices.registrations.perKey' : 'devices.registrations.perAddress';
      const err = new NitrogenError('NITROGEN_ERR_RATE_LIMITED', `too many devices registered (${limit}); retry later`, { details: { limit } });
      err.retryAfter = Math.max(1, Math.ceil(Math.max(keyWait, addressWait) / 1000));
      throw err;
    }
    this.perKey.take(keyId, 1, now);
    if (address !== undefined) this.perAddress.take(address, 1, now);
  }
}
