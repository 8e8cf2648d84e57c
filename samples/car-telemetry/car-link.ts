/** Where a car connects: the server's REST base URL and its MQTT endpoint. */
export interface Endpoint {
  rest: string;
  mqtt: string;
}

/** What a car's connection reports to the fleet. */
export interface LinkListener {
  onConnected(): void;
  /** The server refused the car (CONNACK return code 2, 4 or 5, MQTT 3.1.1 §3.2.2.3); the link is closed for good. */
  onRefused(returnCode: number): void;
  onAck(latencyMs: number): void;
  /** Something to count among the run's errors (say, a message the link dropped). */
  onError(kind: string): void;
  /**
   * The connection is gone: `reason` is null when we closed it; `unacked` messages were lost with
   * it; `reconnecting` when the link comes back by itself (the client library does).
   */
  onClosed(reason: string | null, unacked: number, reconnecting: boolean): void;
}

/**
 * One car's connection. The sample's cars use the client library (`library-link.ts`); the
 * benchmarks drive the same fleet over raw sockets (`raw-link.ts`) to compare.
 */
export interface CarLink {
  open(endpoint: Endpoint, localAddress: string | undefined, id: string, secret: string, keepaliveS: number): void;
  /** Why `publish` returns false, for the run's error counts. */
  readonly dropReason: string;
  /** Sends one message; false when it was not taken (not connected, or no room left). */
  publish(type: string, tsMs: number, body: object, qos: 0 | 1): boolean;
  /** Called every tick for a connected car that is not driving, with `performance.now()`. */
  idle(now: number): void;
  /** Ends the connection politely. */
  close(): void;
  /** Drops the connection at once; `reason` is reported unless it is null. */
  destroy(reason: string | null): void;
}

export type LinkFactory = (listener: LinkListener) => CarLink;
