import { z } from 'zod';
import { PRINCIPAL_TYPES } from '../ports/principal.js';
import { PrincipalId, Tags, UtcTime } from './common.js';

/** The shortest password a person may choose (docs/api.md, "Principals and credentials"). */
const MIN_PASSWORD_LENGTH = 12;

const TYPE_RULE = `must be one of ${PRINCIPAL_TYPES.join(', ')}`;
export const PrincipalType = z.enum(PRINCIPAL_TYPES, { error: TYPE_RULE });

const NAME_RULE = 'must be a string of 1-256 characters';
const Name = z.string({ error: NAME_RULE }).min(1, { error: NAME_RULE }).max(256, { error: NAME_RULE });

const PASSWORD_RULE = `must be at least ${MIN_PASSWORD_LENGTH} characters`;
const Password = z.string({ error: PASSWORD_RULE }).min(MIN_PASSWORD_LENGTH, { error: PASSWORD_RULE });

/** What a client sends to register one principal. */
export const Registration = z
  .strictObject(
    {
      type: PrincipalType,
      id: PrincipalId.optional().meta({ description: 'Assigned as `{type}-{16 hex digits}` when absent.' }),
      name: Name.optional(),
      tags: Tags.optional(),
      password: Password.optional().meta({ description: 'For user principals only; the others get a server-made secret.' }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a registration field' : 'must be a JSON object') },
  )
  // Only a person picks a secret; devices and apps get 256 random bits from the server.
  .superRefine((registration, ctx) => {
    if (registration.password !== undefined && registration.type !== 'user') ctx.addIssue({ code: 'custom', path: ['password'], message: 'only user principals choose a password' });
  })
  .meta({ id: 'Registration' });
export type Registration = z.output<typeof Registration>;

/** The fields of a principal that can be changed; any other is refused. */
export const PrincipalChanges = z
  .strictObject(
    { name: Name.optional(), tags: Tags.optional(), enabled: z.boolean({ error: 'must be a boolean' }).optional() },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'cannot be changed (name, tags, enabled can)' : 'must be a JSON object') },
  )
  .meta({ id: 'PrincipalChanges' });
export type PrincipalChanges = z.output<typeof PrincipalChanges>;

export const PasswordChange = z.strictObject({ password: Password }, { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a field here (password is)' : 'must be {"password": string}') });

/** A principal id and its secret or password, exchanged for an access token. */
export const Credentials = z.object({ id: z.string(), secret: z.string() });

/** A principal as clients see it: never with credentials. */
export const Principal = z
  .strictObject({
    id: PrincipalId,
    type: PrincipalType,
    name: z.string().optional(),
    tags: z.array(z.string()),
    createdAt: UtcTime,
    lastSeenAt: UtcTime.optional(),
    enabled: z.boolean(),
  })
  .meta({ id: 'Principal' });
