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
