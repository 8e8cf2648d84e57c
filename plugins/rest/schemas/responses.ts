import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from '../../../core/errors.js';
import { NextCursor, UtcTime } from '../../../core/schemas/common.js';
import { Message } from '../../../core/schemas/envelope.js';
import { Permission } from '../../../core/schemas/permissions.js';
import { Principal } from '../../../core/schemas/principals.js';
import { Presence } from '../../../core/schemas/devices.js';

/** What the REST routes answer, as schemas: the OpenAPI document's responses, and what the tests hold real answers to. */

/** The error shape of every route; the OpenAPI document narrows `code` per route and status. */
export const ErrorBody = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(Object.keys(ErrorCodes) as [ErrorCode, ...ErrorCode[]]).meta({ description: 'A stable code; docs/errors.md lists them.' }),
      message: z.string().meta({ description: '"internal error" for status 500 and 502.' }),
      details: z.record(z.string(), z.unknown()).optional().meta({ description: 'More to say, such as the field that failed (`field`) or the limit that was hit (`limit`); never for status 500 and 502.' }),
    }),
  })
  .meta({ id: 'Error' });

export const TokenGrant = z.strictObject({ accessToken: z.string(), expiresAt: UtcTime, principal: Principal }).meta({ id: 'TokenGrant', description: 'An access token, when it expires, and whose it is.' });

export const RegisteredPrincipals = z.strictObject({
  principals: z.array(z.strictObject({ principal: Principal, secret: z.string().optional().meta({ description: 'The server-made secret: shown only here.' }) })),
});
/** A listed principal; with `with=presence`, also its presence. */
const ListedPrincipal = Principal.extend({ presence: Presence.nullable().optional() });
export const PrincipalPage = z.strictObject({ principals: z.array(ListedPrincipal), next: NextCursor });
export const OnePrincipal = z.strictObject({ principal: Principal });
export const RotatedSecret = z.strictObject({ principal: Principal, secret: z.string() });

export const Messages = z.strictObject({ messages: z.array(Message) });
export const MessagePage = z.strictObject({ messages: z.array(Message), next: NextCursor });
export const OneMessage = z.strictObject({ message: Message });

export const Permissions = z.strictObject({ permissions: z.array(Permission) });
export const OnePermission = z.strictObject({ permission: Permission });

const Count = z.int().min(0);

const Replay = z
  .strictObject({
    id: z.int().min(1),
    since: UtcTime.optional(),
    until: UtcTime.optional(),
    state: z.enum(['running', 'done', 'failed', 'cancelled']),
    sent: Count,
    error: z.string().optional(),
  })
  .meta({ id: 'Replay' });

const SinkStatus = z
  .strictObject({
    name: z.string(),
    position: z.string().nullable(),
    delivered: Count,
    deadLettered: Count,
    retrying: z.boolean(),
    lastError: z.string().nullable(),
    replays: z.array(Replay),
    lag: z.strictObject({ count: Count, oldestTs: UtcTime.nullable() }).nullable(),
    partition: z.strictObject({ index: Count, of: Count }).optional().meta({ description: 'On a cluster: the partition of the sink this instance feeds (docs/cluster.md).' }),
  })
  .meta({ id: 'SinkStatus' });

export const Sinks = z.strictObject({ sinks: z.array(SinkStatus) });
export const OneSink = z.strictObject({ sink: SinkStatus });
export const DeadLetters = z.strictObject({
  deadLetters: z.array(z.strictObject({ at: UtcTime, sink: z.string(), reason: z.string(), message: Message })),
});
export const StartedReplay = z.strictObject({ replay: Replay });

const Url = z.string().optional();
export const Headwaiter = z.strictObject({
  endpoints: z.strictObject({
    rest: z.string().nullable(),
    mqtt: z.string().nullable(),
    https: Url.meta({ description: 'REST over TLS, when listening.' }),
    mqtts: Url.meta({ description: 'MQTT over TLS, when listening.' }),
    mqttWs: Url.meta({ description: 'MQTT over WebSockets, when listening.' }),
    mqttWss: Url.meta({ description: 'MQTT over WebSockets over TLS, when listening.' }),
  }),
});

export const Liveness = z.strictObject({ status: z.literal('ok'), uptimeSeconds: Count, pendingCommits: Count });

const Status = z.enum(['ok', 'degraded', 'down']);
export const Readiness = z.strictObject({
  status: z.enum(['ok', 'degraded', 'down', 'starting', 'stopping', 'stopped']),
  ready: z.boolean(),
  checkedAt: UtcTime.nullable(),
  components: z.record(
    z.string(),
    z.strictObject({
      kind: z.string(),
      critical: z.boolean(),
      status: Status,
      since: UtcTime,
      reason: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  ),
});

export const PrometheusText = z.string().meta({ description: 'Prometheus text exposition format 0.0.4.' });
/** An OpenAPI 3.1 document (its own schema is the OpenAPI specification's). */
export const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.unknown()) });
