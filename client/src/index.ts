/**
 * @nitrogen/client for Node.js: MQTT over TCP or TLS, REST and SSE, and a queue file that survives
 * restarts. The browser build (`./browser.js`) has the same API over REST and SSE.
 */
import { connectWith, type Platform } from './connect.js';
import type { ConnectOptions } from './options.js';
import type { Session } from './session.js';
import { FileStore } from './node/file-store.js';
import { tcpOpener } from './node/tcp.js';
import { MqttWire } from './mqtt/mqtt-wire.js';

const node: Platform = {
  mqtt: { opener: tcpOpener, wire: (...args) => new MqttWire(...args) },
  fileStore: (s, report) =>
    new FileStore({
      path: s.queueFile!,
      fsync: s.fsync,
      onError: (e) => report.error(e),
      onRepaired: (bytes) => report.warning(`queue file ${s.queueFile}: cut off ${bytes} damaged bytes at its end (a write cut short by a crash)`),
    }),
};

/** Connects a device or an app to a Nitrogen server. */
export function connect(options: ConnectOptions): Promise<Session> {
  return connectWith(node, options);
}

export * from './exports.js';
export { registerOnce } from './node/registration-file.js';
