import { z } from 'zod';
import { NitrogenError } from '../../../core/errors.js';
import { ApiKey, Certificate, CertificateUpload, Claim, ClaimCode, DesiredPatch, DeviceStateBody, NewApiKey, SelfRegistration, Twin } from '../../../core/schemas/devices.js';
import { Principal } from '../../../core/schemas/principals.js';
import { PrincipalId } from '../../../core/schemas/common.js';
import type { Json } from '../../../core/twin-documents.js';
import { originOf, principalOf, type RestContext, type RestDeps } from '../context.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { jsonBody } from '../validation.js';

const ById = z.strictObject({ id: z.string().meta({ description: 'A principal id.' }) });
const Fingerprint = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { error: 'must be a SHA-256 fingerprint: 64 lowercase hex digits' })
  .meta({ description: 'SHA-256 of the DER encoding, lowercase hex.' });

/** The key a device presents to register itself: `Authorization: ApiKey <key>` (or `Bearer <key>`). */
function presentedKey(ctx: RestContext): string {
  const match = /^(?:ApiKey|Bearer)\s+(\S+)$/i.exec(ctx.get('authorization'));
  if (!match) throw new NitrogenError('NITROGEN_ERR_UNAUTHENTICATED', 'an Authorization: ApiKey <key> header is required');
  return match[1]!;
}

/** API keys, self-registration, claims and claim codes (docs/onboarding.md); the rules are core/api-keys.ts's, core/claim-codes.ts's… */
export function onboardingRoutes(deps: RestDeps): Route[] {
  const { devices } = deps;
  return [
    route({
      method: 'post',
      path: '/api-keys',
      tag: 'onboarding',
      summary: 'Create an API key a device or a factory line registers devices with',
      description: 'The key is answered only here. Owned by the caller, or by `owner` (which takes `admin` on it); devices own no keys.',
      body: jsonBody(NewApiKey),
      responses: { 201: { description: 'The key and its secret form, shown only here', body: z.strictObject({ apiKey: ApiKey, key: z.string().meta({ description: '`n2k_<id>_<secret>`: what a device presents.' }) }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND', 'NITROGEN_ERR_QUOTA_EXCEEDED'],
      async handle(ctx, { body }) {
        return { status: 201, body: await devices.apiKeys.create(principalOf(ctx), await body()) };
      },
    }),
    route({
      method: 'get',
      path: '/api-keys',
      tag: 'onboarding',
      summary: 'The API keys the caller (or `owner`) owns, without their secrets',
      query: z.strictObject({ owner: PrincipalId.optional() }),
      responses: { 200: { description: 'The keys', body: z.strictObject({ apiKeys: z.array(ApiKey) }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle(ctx, { query }) {
        return { status: 200, body: { apiKeys: await devices.apiKeys.list(principalOf(ctx), query.owner) } };
      },
    }),
    route({
      method: 'delete',
      path: '/api-keys/:id',
      tag: 'onboarding',
      summary: 'Revoke an API key: nothing registers with it from then on',
      params: z.strictObject({ id: z.string() }),
      responses: { 204: { description: 'Revoked' } },
      errors: ['NITROGEN_ERR_NOT_FOUND'],
      async handle(ctx, { params }) {
        await devices.apiKeys.revoke(principalOf(ctx), params.id);
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/devices/register',
      public: true,
      tag: 'onboarding',
      summary: 'A device registers itself with an API key (`Authorization: ApiKey <key>`)',
      description: 'No access token: the key is the credential, limited like a secret. Devices registered are limited per key and per address (`devices.registrations`). The secret (and claim code) are answered only here.',
      body: jsonBody(SelfRegistration),
      responses: { 201: { description: 'The device, its secret, and a claim code when the key makes devices claimable', body: z.strictObject({ principal: Principal, secret: z.string(), claimCode: ClaimCode.optional() }) } },
      errors: ['NITROGEN_ERR_UNAUTHENTICATED', 'NITROGEN_ERR_BAD_CREDENTIALS', 'NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_RATE_LIMITED', 'NITROGEN_ERR_CONFLICT'],
      async handle(ctx, { body }) {
        const key = presentedKey(ctx);
        return { status: 201, body: await devices.selfRegistrations.register(key, await body(), originOf(ctx)) };
      },
    }),
    route({
      method: 'post',
      path: '/claims',
      tag: 'onboarding',
      summary: 'Claim a device by the code it shows: the caller is granted `admin` on it',
      description: 'Once per code, before it expires. Failed claims are limited per caller and per address (`devices.claimAttempts`).',
      body: jsonBody(Claim),
      responses: { 200: { description: 'The device claimed', body: z.strictObject({ principal: Principal }) } },
      errors: ['NITROGEN_ERR_CLAIM_CODE_INVALID', 'NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_RATE_LIMITED'],
      async handle(ctx, { body }) {
        const { code } = await body();
        return { status: 200, body: { principal: await devices.claimCodes.claim(principalOf(ctx), code, originOf(ctx)) } };
      },
    }),
    route({
      method: 'post',
      path: '/principals/:id/claim-code',
      tag: 'onboarding',
      summary: 'A new claim code for a device, replacing its old one; by the device itself or a caller holding `admin` on it',
      params: ById,
      responses: { 201: { description: 'The code', body: ClaimCode } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(ctx, { params }) {
        return { status: 201, body: await devices.claimCodes.issueFor(principalOf(ctx), params.id) };
      },
    }),
  ];
}

/** Client certificates and certificate authorities (docs/onboarding.md, "Certificates"). */
export function certificateRoutes(deps: RestDeps): Route[] {
  const { certificates } = deps.devices;
  const TAG = 'certificates';
  return [
    route({
      method: 'post',
      path: '/principals/:id/certificates',
      tag: TAG,
      summary: "Register a device's client certificate (PEM); `admin` on it",
      params: ById,
      body: jsonBody(CertificateUpload),
      responses: { 201: { description: 'The certificate as registered', body: z.strictObject({ certificate: Certificate }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND', 'NITROGEN_ERR_CONFLICT'],
      async handle(ctx, { params, body }) {
        return { status: 201, body: { certificate: await certificates.add(principalOf(ctx), params.id, (await body()).certificate) } };
      },
    }),
    route({
      method: 'get',
      path: '/principals/:id/certificates',
      tag: TAG,
      summary: "A device's registered and revoked certificates",
      params: ById,
      query: NoQuery,
      responses: { 200: { description: 'The certificates', body: z.strictObject({ certificates: z.array(Certificate) }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle(ctx, { params }) {
        return { status: 200, body: { certificates: await certificates.list(principalOf(ctx), params.id) } };
      },
    }),
    route({
      method: 'delete',
      path: '/principals/:id/certificates/:fingerprint',
      tag: TAG,
      summary: 'Revoke a certificate of a device (registered, or issued by an authority); ends its sessions',
      params: z.strictObject({ id: z.string(), fingerprint: Fingerprint }),
      responses: { 200: { description: 'The certificate as revoked', body: z.strictObject({ certificate: Certificate }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(ctx, { params }) {
        return { status: 200, body: { certificate: await certificates.revoke(principalOf(ctx), params.id, params.fingerprint) } };
      },
    }),
    route({
      method: 'post',
      path: '/certificate-authorities',
      tag: TAG,
      summary: 'Register a certificate authority: a certificate it signed authenticates the device its subject CN names',
      description: 'Takes `admin` on the system.',
      body: jsonBody(CertificateUpload),
      responses: { 201: { description: 'The authority as registered', body: z.strictObject({ certificate: Certificate }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle(ctx, { body }) {
        return { status: 201, body: { certificate: await certificates.addAuthority(principalOf(ctx), (await body()).certificate) } };
      },
    }),
    route({
      method: 'get',
      path: '/certificate-authorities',
      tag: TAG,
      summary: 'The registered certificate authorities',
      query: NoQuery,
      responses: { 200: { description: 'The authorities', body: z.strictObject({ certificates: z.array(Certificate) }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle(ctx) {
        return { status: 200, body: { certificates: await certificates.listAuthorities(principalOf(ctx)) } };
      },
    }),
    route({
      method: 'delete',
      path: '/certificate-authorities/:fingerprint',
      tag: TAG,
      summary: 'Remove a certificate authority',
      params: z.strictObject({ fingerprint: Fingerprint }),
      responses: { 204: { description: 'Removed' } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(ctx, { params }) {
        await certificates.removeAuthority(principalOf(ctx), params.fingerprint);
        return { status: 204 };
      },
    }),
  ];
}

/** Presence, last-known state and twins (docs/onboarding.md, "Presence and state"). */
export function stateRoutes(deps: RestDeps): Route[] {
  const { state } = deps.devices;
  return [
    route({
      method: 'get',
      path: '/principals/:id/state',
      tag: 'state',
      summary: 'What the service knows of a principal: presence, the latest message of each type, the twin',
      description: 'Needs `view` on it.',
      params: ById,
      query: NoQuery,
      responses: { 200: { description: 'Its state', body: DeviceStateBody } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND', 'NITROGEN_ERR_UNAVAILABLE'],
      async handle(ctx, { params }) {
        const actor = principalOf(ctx);
        const principal = await deps.principals.get(actor, params.id);
        const [presence, latest, twin] = await Promise.all([deps.presence.state(params.id), state.latest(actor, params.id), state.twin(actor, params.id)]);
        return { status: 200, body: { principal, presence, latest, twin } };
      },
    }),
    route({
      method: 'patch',
      path: '/principals/:id/twin/desired',
      tag: 'state',
      summary: 'Change the desired state of a device (a JSON merge patch); it gets a `nitrogen.desired` command',
      description: 'Needs `admin` on it. The twin (desired and reported) is bounded by `devices.maxTwinBytes`.',
      params: ById,
      body: jsonBody(DesiredPatch),
      responses: { 200: { description: 'The twin as changed', body: z.strictObject({ twin: Twin }) } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND', 'NITROGEN_ERR_QUOTA_EXCEEDED'],
      async handle(ctx, { params, body }) {
        return { status: 200, body: { twin: await state.setDesired(principalOf(ctx), params.id, (await body()) as Record<string, Json>) } };
      },
    }),
  ];
}
