export type { ConnectOptions, QueueOptions } from './options.js';
export { Session, type SessionEvents, type QueryOptions } from './session.js';
export type { Sending } from './outbox.js';
export type { Message, OutgoingMessage } from './envelope.js';
export type { MessageFilter } from './filter.js';
export type { Subscription } from './subscription.js';
export type { CommandHandler } from './commands.js';
export type { Credential } from './tokens.js';
export { ClientError, ClientErrorCodes, type ClientErrorCode } from './errors.js';
