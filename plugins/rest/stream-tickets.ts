import { randomBytes } from 'node:crypto';
import { NitrogenError } from '../../core/errors.js';
import type { Principal } from '../../core/ports/principal.js';

/** Who a ticket opens a stream for, as the token that asked for it said. */
export interface TicketHolder {
  principal: Principal;
  tokenExpires: number;
  actor?: string;
}

/**
 * Stream tickets: a browser's `EventSource` sends no headers, so it cannot carry an access
 * token except in the URL, where proxies and histories keep it. Instead the page asks for a
 * ticket (with its token, in a header) and opens `GET /messages/stream?ticket=…`: a ticket is
 * 256 random bits, opens one stream, within `streamTicketTtl`, and is then gone. Tickets live in
 * this instance's memory, at most `maxTickets` at once.
 */
export class StreamTickets {
  private readonly tickets = new Map<string, TicketHolder & { expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxTickets: number,
  ) {}

  issue(holder: TicketHolder): { ticket: string; expiresAt: string } {
    const now = Date.now();
    if (this.tickets.size >= this.maxTickets) for (const [ticket, held] of this.tickets) if (held.expiresAt <= now) this.tickets.delete(ticket);
    if (this.tickets.size >= this.maxTickets) {
      const err = new NitrogenError('NITROGEN_ERR_OVERLOADED', `${this.maxTickets} stream tickets are outstanding (maxStreams); retry shortly`, { details: { limit: 'maxStreams' } });
      err.retryAfter = 1;
      throw err;
    }
    const ticket = randomBytes(32).toString('base64url');
    // A ticket never outlives the token it was asked with.
    const expiresAt = Math.min(now + this.ttlMs, holder.tokenExpires);
    this.tickets.set(ticket, { ...holder, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The holder of an unused, unexpired ticket, which is used up; else 401 NITROGEN_ERR_TOKEN_INVALID. */
  redeem(ticket: string): TicketHolder {
    const held = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    if (!held || held.expiresAt <= Date.now()) throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'unknown, used or expired stream ticket');
    return held;
  }
}
