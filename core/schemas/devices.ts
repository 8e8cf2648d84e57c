import { z } from 'zod';
import { API_KEY_CAPABILITIES } from '../api-keys.js';
import { ACTIONS } from '../ports/principal.js';
import { IsoTime, MessageType, PrincipalId, Tags, UtcTime } from './common.js';
import { Message } from './envelope.js';
import { Principal } from './principals.js';

/** The inputs and outputs of onboarding, certificates, presence and device state (docs/api.md, "Devices"). */

const NAME_RULE = 'must be a string of 1-256 characters';
const Name = z.string({ error: NAME_RULE }).min(1, { error: NAME_RULE }).max(256, { error: NAME_RULE });
const ACTIONS_RULE = `must be an array of ${ACTIONS.join(', ')}`;

export const NewApiKey = z
  .strictObject(
    {
      owner: PrincipalId.optional().meta({ description: 'The principal owning the key; the caller when absent (another takes `admin` on it).' }),
      name: Name.optional(),
      capabilities: z
        .array(z.enum(API_KEY_CAPABILITIES), { error: `must be an array of ${API_KEY_CAPABILITIES.join(', ')}` })
        .min(1)
        .optional()
        .meta({ description: 'What the key may do; `["register"]` when absent.' }),
      grant: z.array(z.enum(ACTIONS), { error: ACTIONS_RULE }).max(ACTIONS.length, { error: ACTIONS_RULE }).optional().meta({ description: 'What the owner is granted on each device registered with the key; `["admin"]` when absent.' }),
      deviceTags: Tags.optional().meta({ description: 'Tags each device registered with the key gets.' }),
      claimable: z.boolean({ error: 'must be a boolean' }).optional().meta({ description: 'Whether such a device gets a claim code; true when absent.' }),
      expiresAt: IsoTime.optional().meta({ description: 'After this time the key registers nothing.' }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not an API key field' : 'must be a JSON object') },
  )
  .meta({ id: 'NewApiKey' });

export const ApiKey = z
  .strictObject({
    id: z.string(),
    owner: PrincipalId,
    name: z.string().optional(),
    capabilities: z.array(z.enum(API_KEY_CAPABILITIES)),
    grant: z.array(z.enum(ACTIONS)),
    deviceTags: z.array(z.string()),
    claimable: z.boolean(),
    createdAt: UtcTime,
    expiresAt: UtcTime.optional(),
  })
  .meta({ id: 'ApiKey' });

export const SelfRegistration = z
  .strictObject(
    {
      id: PrincipalId.optional().meta({ description: 'Assigned as `device-{16 hex digits}` when absent.' }),
      name: Name.optional(),
      tags: Tags.optional(),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a field here (id, name, tags are)' : 'must be a JSON object') },
  )
  .meta({ id: 'SelfRegistration' });

const CODE_RULE = 'must be a claim code such as 7KQ2M-XW4PB';
export const Claim = z.strictObject({ code: z.string({ error: CODE_RULE }).min(10, { error: CODE_RULE }).max(20, { error: CODE_RULE }) }, { error: () => 'must be {"code": string}' });

export const ClaimCode = z.strictObject({ code: z.string(), expiresAt: UtcTime }).meta({ id: 'ClaimCode', description: 'Shown on the device or printed on its label; usable once, until it expires.' });

export const CertificateUpload = z.strictObject(
  {
    certificate: z
      .string({ error: 'must be a PEM certificate' })
      .min(1)
      .max(16 * 1024, { error: 'must be a PEM certificate of at most 16 KiB' }),
  },
  { error: () => 'must be {"certificate": "-----BEGIN CERTIFICATE-----…"}' },
);

export const Certificate = z
  .strictObject({
    fingerprint: z.string().meta({ description: 'SHA-256 of the DER encoding, lowercase hex.' }),
    subject: z.string(),
    issuer: z.string(),
    notBefore: UtcTime,
    notAfter: UtcTime,
    addedAt: UtcTime,
    revokedAt: UtcTime.optional(),
  })
  .meta({ id: 'Certificate' });

export const Presence = z
  .strictObject({
    connected: z.boolean(),
    since: UtcTime,
    address: z.string().optional(),
    instance: z.string(),
    transport: z.string(),
    connections: z.int().min(0),
  })
  .meta({ id: 'Presence' });

const JsonObject = z.record(z.string(), z.unknown());
export const Twin = z
  .strictObject({
    desired: JsonObject,
    desiredVersion: z.int().min(0),
    reported: JsonObject,
    reportedVersion: z.int().min(0),
    updatedAt: UtcTime.optional(),
    delta: JsonObject.nullable().meta({ description: 'What desired holds that reported does not; null when nothing differs.' }),
  })
  .meta({ id: 'Twin' });

export const DeviceStateBody = z.strictObject({
  principal: Principal,
  presence: Presence.nullable().meta({ description: 'Null when it never connected.' }),
  latest: z.record(MessageType, Message).meta({ description: 'The latest message of each type it sent, by type.' }),
  twin: Twin,
});

export const DesiredPatch = JsonObject.meta({ description: 'A JSON merge patch (RFC 7396) of the desired state: null removes a member.' });
