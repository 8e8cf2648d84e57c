import { z } from 'zod';
import { PRINCIPAL_ID_PATTERN } from '../message.js';
import { ACTIONS } from '../ports/principal.js';
import { IsoTime, UtcTime } from './common.js';

/** The default priority of a record; lower is evaluated first. */
export const DEFAULT_PRIORITY = 1000;

const ANY_PRINCIPAL_RULE = 'must be a principal id, or null for any';
const AnyPrincipal = z.string({ error: ANY_PRINCIPAL_RULE }).regex(PRINCIPAL_ID_PATTERN, { error: ANY_PRINCIPAL_RULE }).nullable().meta({ description: 'A principal id, or null for any principal.' });

const ACTION_RULE = `must be one of ${ACTIONS.join(', ')}, or null for any`;
const Action = z.enum(ACTIONS, { error: ACTION_RULE });

const PRIORITY_RULE = 'must be a non-negative integer (lower is evaluated first)';

/** What a client sends to create a permission record (docs/api.md, "Permission records"). */
export const PermissionGrant = z
  .strictObject(
    {
      issuedTo: AnyPrincipal.optional(),
      principalFor: AnyPrincipal.optional(),
      action: Action.nullable().optional(),
      authorized: z.boolean({ error: 'must be a boolean' }),
      priority: z
        .number({ error: PRIORITY_RULE })
        .min(0, { error: PRIORITY_RULE })
        .max(2 ** 31, { error: PRIORITY_RULE })
        .refine(Number.isInteger, { error: PRIORITY_RULE })
        .optional()
        .meta({ type: 'integer', default: DEFAULT_PRIORITY }),
      expires: IsoTime.optional().meta({ description: 'The record is ignored from this time on.' }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a permission field' : 'must be a JSON object') },
  )
  .meta({ id: 'PermissionGrant' });
export type PermissionGrant = z.output<typeof PermissionGrant>;

export const Permission = z
  .strictObject({
    id: z.string(),
    issuedTo: z.string().nullable(),
    principalFor: z.string().nullable(),
    action: z.enum(ACTIONS).nullable(),
    authorized: z.boolean(),
    priority: z.int().min(0),
    expires: UtcTime.optional(),
    createdAt: UtcTime,
  })
  .meta({ id: 'Permission' });
