// The Sink port's conformance suite on both AMQP sinks, each against its in-process peer:
// what the peer received is decoded back into envelopes and compared with what was sent.
import { Counter, Registry } from 'prom-client';
import { AmqpSink, AmqpSinkOptions, EventHubsSink, EventHubsSinkOptions } from '../../adapters/amqp-sinks/index.js';
import { createLogger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import type { Sink } from '../../core/ports/sink.js';
import { RheaBroker } from './rhea-broker.js';
import { sinkConformance } from '../conformance/sink.js';
import { EventHubsPeer } from '../helpers/eventhubs-peer.js';
import { until } from './util.js';

const envelopeOf = (amqpMessage: Record<string, unknown>) => JSON.parse(Buffer.from((amqpMessage.body as { content: Buffer }).content).toString('utf8')) as Message;

{
  let peer: RheaBroker;
  let seen = 0;
  sinkConformance('amqp sink, rhea peer', {
    open: async () => {
      peer = await RheaBroker.start();
      seen = 0;
      const sink = new AmqpSink('conformance', AmqpSinkOptions.parse({ url: peer.url, address: 'q', sendTimeoutMs: 2000 }), createLogger('silent'));
      await sink.start();
      return sink;
    },
    close: async (sink: Sink) => {
      await sink.stop!();
      await peer.stop();
    },
    received: async (count) => {
      const accepted = () => (peer.received.get('q') ?? []).filter((m) => peer.outcome(m, 'q') === 'accept');
      await until(() => accepted().length >= seen + count, 8000, `${count} messages at the peer`);
      const fresh = accepted().slice(seen);
      seen = accepted().length;
      return fresh.map(envelopeOf);
    },
    // The peer releases everything: the downstream is there but cannot take messages now.
    outage: async () => {
      peer.outcome = () => 'release';
      return async () => {
        peer.outcome = () => 'accept';
      };
    },
  });
}

{
  let hub: EventHubsPeer;
  let seen = 0;
  const renewals = new Counter({ name: 'conformance_renewals', help: 'unused', labelNames: ['sink', 'outcome'], registers: [new Registry()] });
  sinkConformance('eventhubs sink, fake hub', {
    open: async () => {
      hub = await EventHubsPeer.start();
      seen = 0;
      const sink = new EventHubsSink('conformance', EventHubsSinkOptions.parse({ connectionString: hub.connectionString(), sendTimeoutMs: 2000 }), createLogger('silent'), renewals);
      await sink.start();
      return sink;
    },
    close: async (sink: Sink) => {
      await sink.stop!();
      await hub.stop();
    },
    received: async (count) => {
      await until(() => hub.events.length >= seen + count, 8000, `${count} events at the hub`);
      const fresh = hub.events.slice(seen);
      seen = hub.events.length;
      return fresh.map((e) => envelopeOf(e.event as unknown as Record<string, unknown>));
    },
    outage: async () => {
      hub.outcome = () => 'release';
      return async () => {
        hub.outcome = () => 'accept';
      };
    },
  });
}
