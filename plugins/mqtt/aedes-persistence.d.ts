// aedes-persistence ships types for its in-memory store but maps no module to them, and types
// packets as any MQTT packet; session-store.ts extends the class, which aedes only ever hands
// PUBLISH packets. Declared here: the members session-store.ts uses or overrides.
declare module 'aedes-persistence/asyncPersistence.js' {
  import type { Client } from 'aedes';
  import type { Readable } from 'node:stream';

  interface StoredPacket {
    topic: string;
    payload: Buffer;
    messageId?: number;
  }

  class MemoryPersistence {
    setup(broker: unknown): Promise<void>;
    storeRetained(packet: StoredPacket): Promise<void>;
    cleanSubscriptions(client: Client): Promise<void>;
    outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void>;
    outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void>;
    outgoingUpdate(client: Client, packet: StoredPacket): Promise<void>;
    outgoingClearMessageId(client: Client, packet: StoredPacket): Promise<StoredPacket | undefined>;
    outgoingStream(client: Client): Readable;
    incomingStorePacket(client: Client, packet: StoredPacket): Promise<void>;
    incomingGetPacket(client: Client, packet: { messageId?: number }): Promise<StoredPacket>;
    cleanIncoming(client: Client): Promise<void>;
    delWill(client: Client): Promise<unknown>;
  }
  export = MemoryPersistence;
}
