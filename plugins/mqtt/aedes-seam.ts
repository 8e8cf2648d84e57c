/**
 * Every place the MQTT transport relies on aedes 1.x (and its mqtt-packet 9 parser) beyond the
 * documented hooks, in one file: each function says what aedes does and why we step in. When
 * aedes is upgraded, this file is what to check; the abuse suite (test/abuse/mqtt-*) shows
 * whether it still holds. One more lives apart, because it must run before aedes is loaded:
 * packet-loggers.ts, on mqtt-packet's `debug` loggers (test/mqtt-packet-loggers.test.ts).
 */
import type { Client, PublishPacket } from 'aedes';

/**
 * Where a committed batch PUBLISH goes: a `$` topic, which no wildcard filter matches
 * [MQTT-4.7.2-1] and no client may subscribe to (subscribe.ts keeps filters under `devices/`).
 */
const PARKING_TOPIC = '$nitrogen/ingested';
const EMPTY = Buffer.alloc(0);
/** CONNACK with return code 1, unacceptable protocol level (MQTT 3.1.1 §3.2). */
const CONNACK_UNACCEPTABLE_PROTOCOL = Buffer.from([0x20, 0x02, 0x00, 0x01]);

/**
 * aedes forwards the PUBLISH object itself to subscribers once `authorizePublish` calls back
 * (lib/handlers/publish.js): rewritten, it carries the normalized envelope on its topic.
 */
export function forwardAs(packet: PublishPacket, topic: string, payload: Buffer): void {
  packet.topic = topic;
  packet.payload = payload;
}

/**
 * A batch is delivered by the fan-out, one envelope per message; the PUBLISH aedes still forwards
 * (and, at QoS 2, keeps until PUBREL) then reaches no one and holds no payload.
 */
export function park(packet: PublishPacket): void {
  packet.topic = PARKING_TOPIC;
  packet.retain = false;
  packet.payload = EMPTY;
}

/**
 * aedes publishes a client's last will when its connection ends without DISCONNECT, reading
 * `client.will` at that moment (lib/client.js `close`); it also keeps a copy in the persistence.
 */
export function dropWill(client: Client): void {
  (client as unknown as { will: unknown }).will = null;
}

/** What `adoptClient` asks of the transport for one client. */
export interface ClientHooks {
  /** The largest packet a client may send before its CONNACK. */
  maxConnectBytes: number;
  /** The largest packet a client may send after it. */
  maxPacketBytes: number;
  /** A packet over that limit arrived: the error the connection is closed with. */
  packetTooLarge(length: number, connected: boolean): Error;
  /** True when the client does not read what it is sent: deliveries to it are skipped. */
  overBuffered(client: Client): boolean;
  /** An unsupported protocol level was answered with CONNACK 1. */
  protocolRefused(client: Client): void;
}

type Deliver = (packet: unknown, done: () => void) => void;

interface ClientInternals {
  connackSent: boolean;
  waitForDrain(done: (err: Error | null, client: Client) => void): void;
  deliver0: Deliver;
  deliverQoS: Deliver;
  _parser: ParserInternals;
}

interface ParserInternals {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(err: Error): void;
  prependListener(event: 'error', listener: (err: Error) => void): void;
}

/** Fits a new connection's aedes Client to the transport's caps, before it has read a byte. */
export function adoptClient(client: Client, hooks: ClientHooks): Client {
  const internals = client as unknown as ClientInternals;

  // After a write that fills the socket, aedes waits for 'drain' before calling back
  // (lib/write.js): the delivery's mqemitter callback, and so the publisher's PUBLISH, waits for
  // the slowest subscriber, and one reader that stops stalls everyone it shares a topic with.
  // Writes complete at once instead; the buffer cap (slow-readers.ts) bounds what such a reader
  // makes the server hold.
  internals.waitForDrain = (done) => setImmediate(done, null, client);

  // Every delivery goes through these two (lib/client.js); a subscription captures them when it
  // is made (lib/handlers/subscribe.js `addSubs`), so they are wrapped before any exists. A
  // skipped QoS 1 delivery to a persistent session stays in its queue (session-store.ts).
  const deliver0 = internals.deliver0;
  const deliverQoS = internals.deliverQoS;
  internals.deliver0 = (packet, done) => (hooks.overBuffered(client) ? setImmediate(done) : deliver0(packet, done));
  internals.deliverQoS = (packet, done) => (hooks.overBuffered(client) ? setImmediate(done) : deliverQoS(packet, done));

  // mqtt-packet buffers a whole packet before parsing it and accepts any length up to 256 MiB
  // (MQTT 3.1.1 §2.2.3): refuse a packet over the limit as soon as its length is read. This runs
  // once per packet received, so the per-packet read check runs here too, not in a second
  // 'packet' listener (an emitter with two listeners copies its listener array at every packet).
  const parser = internals._parser;
  const parseLength = parser._parseLength;
  parser._parseLength = function checkedLength(this: ParserInternals): boolean {
    if (!parseLength.call(this)) return false;
    // A client that publishes without reading its PUBACKs (or pings without reading PINGRESPs)
    // is a reader that stopped too: every packet it sends checks what it has left unread.
    hooks.overBuffered(client);
    const connected = internals.connackSent;
    const limit = connected ? hooks.maxPacketBytes : hooks.maxConnectBytes;
    if (this.packet.length <= limit) return true;
    this._emitError(hooks.packetTooLarge(this.packet.length, connected));
    return false;
  };

  // [MQTT-3.1.2-2] an unsupported protocol level is answered with CONNACK 1 before the connection
  // closes; mqtt-packet refuses it while parsing, before aedes sees a CONNECT it could answer.
  parser.prependListener('error', (err) => {
    if (err.message !== 'Invalid protocol version' || internals.connackSent) return;
    client.conn.write(CONNACK_UNACCEPTABLE_PROTOCOL);
    hooks.protocolRefused(client);
  });
  return client;
}

/** The connected client with this id, from aedes' table of clients (not in its types). */
export function clientOf(broker: unknown, clientId: string): Client | undefined {
  return (broker as { clients: Record<string, Client | undefined> }).clients[clientId];
}
