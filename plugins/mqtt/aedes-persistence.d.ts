// aedes-persistence ships types for its in-memory store but maps no module to them, and types
// packets as any MQTT packet; session-store.ts and shared-session-store.ts extend the class, which aedes only ever hands
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
    createRetainedStream(pattern: string): Readable;
    createRetainedStreamCombi(patterns: string[]): Readable;
    addSubscriptions(client: Client, subs: Array<{ topic: string; qos: number }>): Promise<void>;
    removeSubscriptions(client: Client, topics: string[]): Promise<void>;
    subscriptionsByClient(client: Client): Promise<Array<{ topic: string; qos: number }>>;
    subscriptionsByTopic(topic: string): Promise<Array<{ clientId: string; topic: string; qos: number }>>;
    countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
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

// qlobber ships no types: the two matchers the shared session store (shared-session-store.ts) uses.
declare module 'qlobber' {
  export class QlobberTrue {
    constructor(options: { separator: string; wildcard_one: string; wildcard_some: string; match_empty_levels?: boolean });
    add(topic: string): this;
    test(topic: string): boolean;
  }
}

declare module 'qlobber/aedes/qlobber-sub.js' {
  interface Entry {
    clientId: string;
    topic: string;
    qos: number;
  }
  class QlobberSub {
    constructor(options: { separator: string; wildcard_one: string; wildcard_some: string; match_empty_levels?: boolean });
    add(topic: string, entry: Entry): void;
    remove(topic: string, entry: { clientId: string; topic: string }): void;
    match(topic: string): Entry[];
    clear(): void;
    readonly subscriptionsCount: number;
  }
  export = QlobberSub;
}
