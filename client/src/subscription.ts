import type { Message } from './envelope.js';

/** A live subscription, over MQTT or SSE. */
export interface Subscription {
  /** Resolves once the server has it (SUBACK granted, or the SSE stream open); rejects if it refused. */
  readonly ready: Promise<void>;
  /** Ends it. */
  close(): Promise<void>;
}

export type MessageHandler = (message: Message) => void;

/** Settles once; later calls do nothing. `ready` never rejects unobserved: failures also go to the session's `error` event. */
export function deferred(): { promise: Promise<void>; resolve(): void; reject(error: Error): void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/**
 * Calls an application's handler: an error it throws is the application's, so it surfaces as an
 * uncaught error on a later turn, not inside the client (where it would end a connection).
 */
export function callHandler<T>(handler: (value: T) => void, value: T): void {
  try {
    handler(value);
  } catch (err) {
    setTimeout(() => {
      throw err;
    });
  }
}
