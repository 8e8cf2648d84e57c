/**
 * @nitrogen/client for browsers: the API of the Node build, over REST and Server-Sent Events
 * (the server speaks MQTT over TCP only, which a page cannot open), with the queue in memory.
 */
import { connectWith } from './connect.js';
import type { ConnectOptions } from './options.js';
import type { Session } from './session.js';

/** Connects a principal from a web page: `url` must be the page's origin, or allow it (CORS). */
export function connect(options: ConnectOptions): Promise<Session> {
  return connectWith({}, options);
}

export * from './exports.js';
