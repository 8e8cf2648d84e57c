/**
 * Every error Nitrogen reports to a client or an operator carries one of these codes.
 * The table is data: one row per code with the HTTP status it maps to and whether its
 * message may be shown to a client (koa's `expose`). `docs/errors.md` documents each code;
 * `test/errors.test.ts` fails when a code is missing there.
 */
export const ErrorCodes = {
  NITROGEN_ERR_MALFORMED_JSON: { status: 400, expose: true },
  NITROGEN_ERR_VALIDATION: { status: 400, expose: true },
  NITROGEN_ERR_CLAIM_CODE_INVALID: { status: 400, expose: true },
  NITROGEN_ERR_UNAUTHENTICATED: { status: 401, expose: true },
  NITROGEN_ERR_BAD_CREDENTIALS: { status: 401, expose: true },
  NITROGEN_ERR_TOKEN_EXPIRED: { status: 401, expose: true },
  NITROGEN_ERR_TOKEN_INVALID: { status: 401, expose: true },
  NITROGEN_ERR_CERTIFICATE_REFUSED: { status: 401, expose: true },
  NITROGEN_ERR_FORBIDDEN: { status: 403, expose: true },
  NITROGEN_ERR_SENDER_MISMATCH: { status: 403, expose: true },
  NITROGEN_ERR_PRINCIPAL_DISABLED: { status: 403, expose: true },
  NITROGEN_ERR_NOT_FOUND: { status: 404, expose: true },
  NITROGEN_ERR_REQUEST_TIMEOUT: { status: 408, expose: true },
  NITROGEN_ERR_CONFLICT: { status: 409, expose: true },
  NITROGEN_ERR_PAYLOAD_TOO_LARGE: { status: 413, expose: true },
  NITROGEN_ERR_BATCH_TOO_LARGE: { status: 413, expose: true },
  NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, expose: true },
  NITROGEN_ERR_RATE_LIMITED: { status: 429, expose: true },
  NITROGEN_ERR_QUOTA_EXCEEDED: { status: 429, expose: true },
  NITROGEN_ERR_OVERLOADED: { status: 503, expose: true },
  NITROGEN_ERR_UNAVAILABLE: { status: 503, expose: true },
  NITROGEN_ERR_STORE: { status: 500, expose: false },
  NITROGEN_ERR_SINK_RETRYABLE: { status: 502, expose: false },
  NITROGEN_ERR_SINK_REJECTED: { status: 502, expose: false },
  NITROGEN_ERR_CONFIG: { status: 500, expose: false },
  NITROGEN_ERR_PLUGIN: { status: 500, expose: false },
  NITROGEN_ERR_INTERNAL: { status: 500, expose: false },
} as const satisfies Record<string, { status: number; expose: boolean }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code; the original error, if any, is kept as `cause`. */
export class NitrogenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Whether the message may be sent to a client (a 5xx message may hold internals). */
  readonly expose: boolean;
  /** Extra facts for the client, such as the field that failed validation. */
  readonly details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (503/429). */
  retryAfter?: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NitrogenError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.expose = ErrorCodes[code].expose;
    if (options.details) this.details = options.details;
  }
}

export function isNitrogenError(err: unknown, code?: ErrorCode): err is NitrogenError {
  return err instanceof NitrogenError && (code === undefined || err.code === code);
}

/** Wraps anything thrown by a driver into a NitrogenError, keeping the original as cause. */
export function wrapError(err: unknown, code: ErrorCode, message: string): NitrogenError {
  if (err instanceof NitrogenError) return err;
  return new NitrogenError(code, message, { cause: err });
}
