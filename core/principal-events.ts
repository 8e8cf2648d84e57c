import { EventEmitter } from 'node:events';

/**
 * Tells transports that a principal's open sessions must end: it was disabled or deleted, or
 * its credentials changed. MQTT closes its connections and SSE its streams at once, so a
 * revoked device does not keep publishing on a connection it opened before.
 * Events are local to this instance; other instances refuse the principal's next
 * authentication and token check.
 */
export class PrincipalEvents extends EventEmitter<{ revoked: [id: string, reason: string] }> {
  constructor() {
    super();
    this.setMaxListeners(0); // one listener per open SSE stream
  }

  revoke(id: string, reason: string): void {
    this.emit('revoked', id, reason);
  }
}
