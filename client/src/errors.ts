/**
 * Errors of the client. Every error a caller sees is a `ClientError` with a stable `code`:
 * either a server's code, kept as the server sent it (`NITROGEN_ERR_…`, listed in the server's
 * docs/errors.md) with the HTTP `status` and `details`, or one of the client's own codes below
 * (`NITROGEN_CLIENT_…`, listed in the package README; a test checks each is documented there).
 * When the client finds a fault the server would refuse for the same reason (an invalid
 * envelope, a message over the size limit), it uses the server's code, so a caller handles one
 * code whichever side noticed.
 */
export const ClientErrorCodes = {
  NITROGEN_CLIENT_BAD_OPTIONS: 'The options given to connect (or to a call) are invalid; the message names the option.',
  NITROGEN_CLIENT_UNREACHABLE: 'The server could not be reached (refused, reset, DNS, TLS, no answer in time).',
  NITROGEN_CLIENT_ID_REJECTED: 'The server refused the MQTT client id (CONNACK 2): another principal holds it. The session does not try it again; connect with another `clientId`.',
  NITROGEN_CLIENT_PROTOCOL: 'The server broke MQTT 3.1.1, Server-Sent Events or the REST contract; the connection was closed.',
  NITROGEN_CLIENT_QUEUE_FULL: 'The outgoing queue holds `queue.maxMessages` messages or `queue.maxBytes` bytes and `queue.whenFull` is "reject"; `details.limit` names the limit.',
  NITROGEN_CLIENT_DROPPED: 'A queued message was dropped unsent to make room for a newer one (`queue.whenFull: "drop-oldest"`).',
  NITROGEN_CLIENT_QUEUE_IO: 'The queue file could not be read or written (`details.path`, the system error as `cause`); messages keep flowing from memory, without the durability of the file.',
  NITROGEN_CLIENT_QUEUE_LOCKED: 'Another live process has the queue file open; `details.pid` names it.',
  NITROGEN_CLIENT_CLOSED: 'The session was closed before the operation finished.',
  NITROGEN_CLIENT_TIMEOUT: 'No answer within the time allowed; `details.limit` names the option (`commandTimeoutMs`, `connectTimeoutMs`, `requestTimeoutMs`).',
  NITROGEN_CLIENT_COMMAND_FAILED: "The device's command handler failed; `details.reply` is the reply it sent.",
} as const;

export type ClientErrorCode = keyof typeof ClientErrorCodes;

export class ClientError extends Error {
  override name = 'ClientError';

  constructor(
    /** A `NITROGEN_CLIENT_…` code, or the server's `NITROGEN_ERR_…` code. */
    readonly code: ClientErrorCode | `NITROGEN_ERR_${string}`,
    message: string,
    /** The server's `details`, or what the client adds (`limit`, `pid`, `returnCode`, `reply`). */
    readonly details?: Record<string, unknown>,
    /** The HTTP status of a server's error answer. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether trying again later may succeed: the server was busy, slow or unreachable, not refusing. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code) || (this.status !== undefined && (this.status === 408 || this.status === 429 || this.status >= 500));
  }

  /** The server's `Retry-After`, in ms, when it sent one. */
  get retryAfterMs(): number | undefined {
    const seconds = this.details?.retryAfter;
    return typeof seconds === 'number' ? seconds * 1000 : undefined;
  }
}

const RETRYABLE = new Set<string>(['NITROGEN_CLIENT_UNREACHABLE', 'NITROGEN_CLIENT_TIMEOUT', 'NITROGEN_ERR_REQUEST_TIMEOUT', 'NITROGEN_ERR_RATE_LIMITED', 'NITROGEN_ERR_OVERLOADED', 'NITROGEN_ERR_UNAVAILABLE']);

export function badOption(option: string, rule: string): ClientError {
  return new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', `${option}: ${rule}`, { option });
}

export function closedError(what: string): ClientError {
  return new ClientError('NITROGEN_CLIENT_CLOSED', `${what}: the session is closed`);
}
