/**
 * The SessionState port: persistent sessions of a connection-oriented transport (MQTT clean
 * session 0) shared by every instance, so a client that reconnects through another instance
 * resumes its subscriptions and receives what was queued for it while it was away. Every
 * operation is atomic on the shared state, so a cap holds across instances; each rejects with
 * NITROGEN_ERR_UNAVAILABLE when the state cannot be reached.
 *
 * Client ids belong to principals: `admit` refuses an id held by another principal while its
 * connection is open or its session persistent.
 */

/** A message held for a client until it acknowledges it. */
export interface QueuedDelivery {
  /** Names the delivery on every instance: the committing instance's run and sequence number. */
  key: string;
  topic: string;
  payload: Buffer;
  qos: number;
  /** The packet identifier it was last sent with, once sent. */
  messageId?: number;
}

export interface Subscription {
  topic: string;
  qos: number;
}

export type Admission =
  /** `ended`: persistent sessions of the principal ended to make room (least recently connected first). */
  | { admitted: true; ended: string[] }
  /** `taken`: another principal holds the id; `full`: `maxSessions` persistent sessions, all connected. */
  | { admitted: false; reason: 'taken' | 'full' };

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
}

export interface RetainedLimits {
  maxMessages: number;
  maxBytes: number;
}

export interface SessionState {
  /**
   * Binds `clientId` to `principal` for the connection `connection` (unique in the deployment).
   * A persistent session counts against `maxSessions` of its principal; a clean one ends a
   * persistent session held under the same id.
   */
  admit(clientId: string, principal: string, persistent: boolean, connection: string, maxSessions: number): Promise<Admission>;
  /** The connection closed: a clean session's binding ends, a persistent one stays, offline. */
  closed(clientId: string, connection: string): Promise<void>;
  /** Forgets a session entirely: binding, subscriptions, queue. */
  endSession(clientId: string): Promise<void>;
  /** Ends every persistent session of `principal` (it was deleted); returns their client ids. */
  endSessionsOf(principal: string): Promise<string[]>;

  addSubscriptions(clientId: string, subscriptions: readonly Subscription[]): Promise<void>;
  removeSubscriptions(clientId: string, topics: readonly string[]): Promise<void>;
  subscriptions(clientId: string): Promise<Subscription[]>;
  /** Every persistent subscription in the deployment, to match deliveries without a round trip. */
  allSubscriptions(): Promise<Array<Subscription & { clientId: string }>>;

  /** Queues a delivery for each client; returns the clients whose queue was full, with the limit hit. */
  enqueue(clientIds: readonly string[], delivery: QueuedDelivery, limits: QueueLimits): Promise<Array<{ clientId: string; limit: 'maxMessages' | 'maxBytes' }>>;
  /** Records the packet identifier a queued delivery was sent with; false when it is not queued. */
  sent(clientId: string, key: string, messageId: number): Promise<boolean>;
  /** Removes the delivery sent with `messageId` (acknowledged), or the one named `key`; returns it. */
  acknowledge(clientId: string, by: { messageId: number } | { key: string }): Promise<QueuedDelivery | undefined>;
  /** Drops everything queued for a client (a clean session starts with nothing queued). */
  dropQueue(clientId: string): Promise<void>;
  /** What is queued for a client, oldest first. */
  queued(clientId: string): Promise<QueuedDelivery[]>;

  /** Sets (or, with an empty payload, clears) the retained message of `topic`. */
  retain(topic: string, payload: Buffer): Promise<void>;
  /** Retained messages whose topic starts with `prefix` (the caller matches wildcards). */
  retainedUnder(prefix: string): Promise<Array<{ topic: string; payload: Buffer }>>;
  /**
   * Counts retained topics and bytes against `principal`'s limits, replacing what it held on the
   * same topics: all of them or none. Returns the limit hit, or null.
   */
  admitRetained(principal: string, entries: ReadonlyArray<{ topic: string; bytes: number }>, limits: RetainedLimits): Promise<'maxMessages' | 'maxBytes' | null>;
  releaseRetained(principal: string, topic: string): Promise<void>;
  /** Forgets what `principal` retained and returns the topics, to clear them. */
  takeRetained(principal: string): Promise<string[]>;
}
