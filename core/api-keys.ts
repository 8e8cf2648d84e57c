import { randomBytes, randomUUID } from 'node:crypto';
import { requireAllowed } from './access.js';
import type { Authenticator, Origin } from './authenticator.js';
import { NitrogenError } from './errors.js';
import type { Identity } from './ports/identity.js';
import type { Action, Principal } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';
import { DEFAULT_PRIORITY } from './schemas/permissions.js';
import { sha256Hash, sha256Matches } from './secrets.js';

const API_KEYS = 'api-keys';
/** What a key may be used for. `register`: a device registers itself with it. */
export const API_KEY_CAPABILITIES = ['register'] as const;
export type ApiKeyCapability = (typeof API_KEY_CAPABILITIES)[number];

/** An API key as its owner sees it: never with its secret. */
export interface ApiKey {
  id: string;
  owner: string;
  name?: string;
  capabilities: ApiKeyCapability[];
  /** What the owner is granted on each device registered with the key. */
  grant: Action[];
  /** Tags every device registered with the key gets. */
  deviceTags: string[];
  /** Whether a device registered with the key gets a claim code, for a person to claim it. */
  claimable: boolean;
  createdAt: string;
  expiresAt?: string;
}

/** What is stored: the key with the SHA-256 digest of its secret part. */
type StoredKey = ApiKey & { secretHash: string };

export interface NewApiKey {
  owner?: string;
  name?: string;
  capabilities?: ApiKeyCapability[];
  grant?: Action[];
  deviceTags?: string[];
  claimable?: boolean;
  expiresAt?: string;
}

// `n2k_<16 hex digits: the key id>_<43 base64url characters: 256 random bits>`. The id finds the
// record in one read; the secret is compared with its digest in constant time.
const KEY_SHAPE = /^n2k_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

function publicKey({ secretHash: _secret, ...key }: StoredKey): ApiKey {
  return key;
}

/**
 * The use cases on API keys: a user or an app creates keys it owns (or, holding `admin` on a
 * principal, keys that principal owns), lists and revokes them; a device or a factory line
 * presents one to register itself (core/onboarding.ts). A key is a credential: 256 random bits,
 * stored as a SHA-256 digest, compared in constant time, its failed checks limited like those
 * of secrets (per key and per address), shown once. Devices own no keys.
 *
 * Throws NITROGEN_ERR_FORBIDDEN, NITROGEN_ERR_NOT_FOUND (also for a key the caller may not see),
 * NITROGEN_ERR_VALIDATION, NITROGEN_ERR_QUOTA_EXCEEDED (`devices.maxApiKeysPerOwner`), and
 * NITROGEN_ERR_BAD_CREDENTIALS / NITROGEN_ERR_RATE_LIMITED from `verify`.
 */
export class ApiKeys {
  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly authenticator: Authenticator,
    private readonly maxPerOwner: number,
  ) {}

  async create(actor: Principal, input: NewApiKey): Promise<{ apiKey: ApiKey; key: string }> {
    const owner = input.owner ?? actor.id;
    if (owner !== actor.id) requireAllowed(this.identity, actor, 'admin', owner);
    const ownerRecord = await this.registry.getPrincipal(owner);
    if (!ownerRecord) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${owner}'`);
    if (ownerRecord.type === 'device') throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'owner: a device owns no API keys', { details: { field: 'owner' } });
    if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= Date.now()) {
      throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'expiresAt: must be in the future', { details: { field: 'expiresAt' } });
    }
    const owned = await this.registry.listRecords(API_KEYS, { principal: owner }, { limit: this.maxPerOwner });
    if (owned.items.length >= this.maxPerOwner) {
      throw new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', `'${owner}' already owns ${this.maxPerOwner} API keys (devices.maxApiKeysPerOwner); revoke one first`, { details: { limit: 'devices.maxApiKeysPerOwner' } });
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const stored: StoredKey = {
      id,
      owner,
      capabilities: input.capabilities ?? ['register'],
      grant: input.grant ?? ['admin'],
      deviceTags: input.deviceTags ?? [],
      claimable: input.claimable ?? true,
      createdAt: new Date().toISOString(),
      secretHash: sha256Hash(secret),
    };
    if (input.name !== undefined) stored.name = input.name;
    if (input.expiresAt !== undefined) stored.expiresAt = input.expiresAt;
    await this.registry.createRecord({ kind: API_KEYS, key: id, principal: owner, value: stored });
    return { apiKey: publicKey(stored), key: `n2k_${id}_${secret}` };
  }

  /** The keys `owner` (the caller when absent) owns; another's take `admin` on it. */
  async list(actor: Principal, owner = actor.id): Promise<ApiKey[]> {
    if (owner !== actor.id) requireAllowed(this.identity, actor, 'admin', owner);
    const page = await this.registry.listRecords(API_KEYS, { principal: owner }, { limit: this.maxPerOwner });
    return page.items.map((r) => publicKey(r.value as StoredKey));
  }

  /** Deletes a key: nothing registers with it from then on. Devices registered with it stay. */
  async revoke(actor: Principal, id: string): Promise<void> {
    const record = await this.registry.getRecord(API_KEYS, id);
    const mayRevoke = record && (record.principal === actor.id || this.identity.authorize(actor, 'admin', record.principal));
    if (!record || !mayRevoke) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no API key '${id}'`);
    await this.registry.deleteRecord(API_KEYS, id);
  }

  /**
   * The key a client presented, if it is one, unexpired, with `capability`, owned by an enabled
   * principal. Refusals are NITROGEN_ERR_BAD_CREDENTIALS whatever the reason, so a caller learns
   * nothing of which keys exist, and they count against the key id and the address.
   */
  async verify(presented: string, capability: ApiKeyCapability, origin: Origin): Promise<ApiKey> {
    const match = KEY_SHAPE.exec(presented);
    const id = match?.[1] ?? 'malformed';
    return this.authenticator.limited('api-key', id, origin, async () => {
      const record = match ? await this.registry.getRecord(API_KEYS, id) : null;
      const key = record?.value as StoredKey | undefined;
      const digest = Buffer.from((key?.secretHash ?? sha256Hash('')).slice('sha256:'.length), 'hex');
      const matches = sha256Matches(match?.[2] ?? '', digest);
      if (!key || !matches) throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'unknown or revoked API key');
      if (key.expiresAt !== undefined && Date.parse(key.expiresAt) <= Date.now()) throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'the API key expired');
      if (!key.capabilities.includes(capability)) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `the API key may not ${capability}`);
      const owner = await this.registry.getPrincipal(key.owner);
      if (!owner?.enabled) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', "the API key's owner is disabled or gone");
      return publicKey(key);
    });
  }
}

/** Permission records by which `owner` holds `actions` on `device`; in force here once this resolves, and on other instances once they hear of it. */
export async function grantOwner(deps: { registry: Registry; identity: Identity; events: PrincipalEvents }, owner: string, device: string, actions: readonly Action[]): Promise<void> {
  const createdAt = new Date().toISOString();
  for (const action of actions) {
    await deps.registry.createPermission({ id: randomUUID(), issuedTo: owner, principalFor: device, action, authorized: true, priority: DEFAULT_PRIORITY, createdAt });
  }
  await deps.identity.permissionsChanged();
  deps.events.permissionsChanged();
}
