// Typed errors. Every error that comes from the wire keeps the AMQP error
// condition (AMQP 1.0 §2.8.15) and description; errors raised locally carry a
// condition too, so callers can switch on one field whatever the origin.

/** AMQP 1.0 §2.8.15-§2.8.18: the standard error conditions. */
export const Condition = {
  InternalError: 'amqp:internal-error',
  NotFound: 'amqp:not-found',
  UnauthorizedAccess: 'amqp:unauthorized-access',
  DecodeError: 'amqp:decode-error',
  ResourceLimitExceeded: 'amqp:resource-limit-exceeded',
  NotAllowed: 'amqp:not-allowed',
  InvalidField: 'amqp:invalid-field',
  NotImplemented: 'amqp:not-implemented',
  ResourceLocked: 'amqp:resource-locked',
  PreconditionFailed: 'amqp:precondition-failed',
  ResourceDeleted: 'amqp:resource-deleted',
  IllegalState: 'amqp:illegal-state',
  FrameSizeTooSmall: 'amqp:frame-size-too-small',
  ConnectionForced: 'amqp:connection:forced',
  FramingError: 'amqp:connection:framing-error',
  ConnectionRedirect: 'amqp:connection:redirect',
  WindowViolation: 'amqp:session:window-violation',
  ErrantLink: 'amqp:session:errant-link',
  HandleInUse: 'amqp:session:handle-in-use',
  UnattachedHandle: 'amqp:session:unattached-handle',
  DetachForced: 'amqp:link:detach-forced',
  TransferLimitExceeded: 'amqp:link:transfer-limit-exceeded',
  MessageSizeExceeded: 'amqp:link:message-size-exceeded',
  LinkRedirect: 'amqp:link:redirect',
  Stolen: 'amqp:link:stolen',
} as const;

/** The `error` composite of AMQP 1.0 §2.8.14, in JavaScript form. */
export interface ErrorCondition {
  condition: string;
  description?: string;
  info?: Record<string, unknown>;
}

export class AmqpError extends Error {
  /** Node-style stable code, e.g. `ERR_AMQP_LINK_DETACHED`. */
  readonly code: string;
  readonly condition: string;
  readonly description: string | undefined;
  readonly info: Record<string, unknown> | undefined;

  constructor(code: string, error: ErrorCondition, message?: string) {
    super(message ?? (error.description ? `${error.condition}: ${error.description}` : error.condition));
    this.name = new.target.name;
    this.code = code;
    this.condition = error.condition;
    this.description = error.description;
    this.info = error.info;
  }
}

/** Malformed input from the peer (or to the decoder). */
export class DecodeError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_DECODE', { condition: Condition.DecodeError, description });
  }
}

/** A value that cannot be expressed in AMQP (a programming error on our side). */
export class EncodeError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_ENCODE', { condition: Condition.InvalidField, description });
  }
}

/** The connection was closed by the peer, lost, or refused. */
export class ConnectionError extends AmqpError {
  constructor(error: ErrorCondition, code = 'ERR_AMQP_CONNECTION') {
    super(code, error);
  }
}

/** The peer ended the session (AMQP 1.0 §2.7.7). */
export class SessionError extends AmqpError {
  constructor(error: ErrorCondition) {
    super('ERR_AMQP_SESSION_ENDED', error);
  }
}

/** The link was detached, by the peer or locally (AMQP 1.0 §2.7.6). */
export class LinkError extends AmqpError {
  constructor(error: ErrorCondition) {
    super('ERR_AMQP_LINK_DETACHED', error);
  }
}

/** SASL negotiation failed (AMQP 1.0 §5.3.3.6): `saslCode` is the outcome code. */
export class SaslError extends AmqpError {
  readonly saslCode: number;
  constructor(saslCode: number, description: string) {
    super('ERR_AMQP_SASL', { condition: Condition.UnauthorizedAccess, description });
    this.saslCode = saslCode;
  }
}

/** Outcome of a rejected, released or modified delivery (AMQP 1.0 §3.4). */
export class DeliveryError extends AmqpError {
  readonly outcome: 'rejected' | 'released' | 'modified';
  readonly state: Record<string, unknown>;
  constructor(outcome: 'rejected' | 'released' | 'modified', state: Record<string, unknown>, error?: ErrorCondition) {
    super(`ERR_AMQP_${outcome.toUpperCase()}`, error ?? { condition: `amqp:${outcome}` }, error?.description ? `message ${outcome}: ${error.condition}: ${error.description}` : `message ${outcome}`);
    this.outcome = outcome;
    this.state = state;
  }
}

/** The sender's bounded queue of sends waiting for credit is full. */
export class SendQueueFullError extends AmqpError {
  constructor(limit: number) {
    super('ERR_AMQP_SEND_QUEUE_FULL', {
      condition: Condition.ResourceLimitExceeded,
      description: `send queue full (${limit} messages waiting for credit or connection)`,
    });
  }
}

/** An unsettled send was in flight when the connection dropped and policy said not to re-send it. */
export class DisconnectedError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_DISCONNECTED', { condition: Condition.ConnectionForced, description });
  }
}

/** A local operation did not complete within its deadline. */
export class OperationTimeoutError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_TIMEOUT', { condition: Condition.ResourceLimitExceeded, description });
  }
}
