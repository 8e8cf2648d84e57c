// What senders and receivers share (AMQP 1.0 §2.6): attach and detach, the
// link's handle, its flow-control state (§2.6.7), and what happens to it
// when the connection drops or the peer detaches it.
import { AmqpError, Condition, LinkError, type ErrorCondition } from './errors.js';
import { log } from './log.js';
import type { Source, Target } from './messaging.js';
import { AttachType, DetachType, type Attach, type Detach, type Flow } from './performatives.js';
import { withTimeout, type Session } from './session.js';

export abstract class Link {
  abstract readonly role: boolean;
  handle = -1;
  remoteHandle = -1;
  state: 'detached' | 'attaching' | 'attached' | 'detaching' | 'closed' = 'detached';
  /** The peer's attach, once received. */
  remote: Attach | null = null;
  /** §2.6.7: delivery-count and link-credit as this end sees them. */
  deliveryCount = 0;
  credit = 0;
  /** Why the link is closed, if it was not closed locally. */
  error: AmqpError | undefined;
  /** Re-attach after a reconnect; false once the application or the peer closed the link. */
  wantsAttach = true;
  /** Closed by the application (as opposed to by the peer or a failure). */
  protected closedLocally = false;
  /** The peer's attach had a null terminus: a refusal, unless a flow follows (see onAttach). */
  private nullTerminus = false;
  private attaching: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private attached: Promise<void> = Promise.resolve();
  private detaching: (() => void) | null = null;

  constructor(
    readonly session: Session,
    readonly name: string,
    readonly address: string,
  ) {}

  /** The role-specific attach fields: termini and settle modes. */
  protected abstract attachFields(): Partial<Attach>;
  protected abstract onAttached(remote: Attach): void;
  protected abstract onFlow(flow: Flow): void;
  /** Rejects or re-queues what is pending when the link ends (final) or the socket drops. */
  protected abstract failPending(err: AmqpError, final: boolean): void;

  get source(): Source | undefined {
    return this.remote?.source;
  }
  get target(): Target | undefined {
    return this.remote?.target;
  }

  /** Attaches (§2.6.3); also re-attaches after a reconnect, settling the same promise if the first never completed. */
  attach(): Promise<void> {
    this.handle = this.session.allocateHandle(this);
    this.state = 'attaching';
    this.nullTerminus = false;
    if (this.attaching === null) {
      const done = new Promise<void>((resolve, reject) => {
        this.attaching = { resolve, reject };
      });
      this.attached = withTimeout(done, this.session.connection.policy.operationTimeout, `attach of ${this.name}`);
    }
    const attach: Attach = { name: this.name, handle: this.handle, role: this.role, ...this.attachFields() };
    this.session.connection.sendFrame(this.session.channel, AttachType, attach);
    return this.attached;
  }

  onAttach(a: Attach): void {
    this.remote = a;
    this.remoteHandle = a.handle;
    // §2.6.3: a peer refusing the link attaches with a null terminus and then detaches with the reason.
    // Some peers (rhea's default listener) leave the terminus null and go on with a flow instead, and
    // other clients proceed; so the frame after it decides: a detach refuses, a flow accepts.
    if ((this.role ? a.source : a.target) === undefined) {
      this.nullTerminus = true;
      log.link('%s: peer attached with a null %s; refused if a detach follows, accepted if a flow does', this.name, this.role ? 'source' : 'target');
      return;
    }
    this.completeAttach(a);
  }

  private completeAttach(a: Attach): void {
    this.state = 'attached';
    log.link('%s attached (handle %d, remote %d)', this.name, this.handle, a.handle);
    this.onAttached(a);
    this.attaching?.resolve();
    this.attaching = null;
  }

  /** A flow for this link (§2.7.4); the first one completes an attach that came with a null terminus. */
  onLinkFlow(f: Flow): void {
    if (this.state === 'attaching' && this.nullTerminus && this.remote !== null) {
      log.link('%s: a flow followed the null %s: proceeding as attached', this.name, this.role ? 'source' : 'target');
      this.completeAttach(this.remote);
    }
    if (this.state === 'attached') this.onFlow(f);
  }

  onDetach(d: Detach): void {
    if (this.state === 'detaching') {
      this.state = 'closed';
      this.session.forget(this);
      this.detaching?.();
      return;
    }
    // Detached by the peer: answer (§2.6.5) and fail whatever was waiting on the link.
    this.session.connection.sendFrame(this.session.channel, DetachType, { handle: this.handle, closed: d.closed });
    const refused = this.state === 'attaching';
    const err = new LinkError(d.error ?? { condition: Condition.DetachForced, description: refused ? 'link refused by peer' : 'link detached by peer' });
    log.link(refused ? '%s refused by peer (detach after its attach): %s' : '%s detached by peer: %s', this.name, err.message);
    this.fail(err, true);
  }

  /** Detaches and closes the link (§2.6.6), rejecting sends still waiting for credit. */
  async close(error?: ErrorCondition): Promise<void> {
    this.wantsAttach = false;
    this.closedLocally = true;
    if (this.state !== 'attached') {
      this.fail(new LinkError({ condition: Condition.DetachForced, description: 'link closed locally' }), true);
      return;
    }
    this.state = 'detaching';
    this.failPending(new LinkError({ condition: Condition.DetachForced, description: 'link closed locally' }), true);
    const done = new Promise<void>((resolve) => {
      this.detaching = resolve;
    });
    this.session.connection.sendFrame(this.session.channel, DetachType, { handle: this.handle, closed: true, error });
    await withTimeout(done, this.session.connection.policy.operationTimeout, `detach of ${this.name}`).catch(() => undefined);
    this.state = 'closed';
    this.session.forget(this);
  }

  onTransportLost(err: AmqpError): void {
    if (this.state === 'closed') return;
    this.state = 'detached';
    this.credit = 0;
    this.failPending(err, false);
  }

  /**
   * The link cannot go on (final) or lost its socket (not final). `local`: the
   * application ended it (closing the link, session or connection), which ends
   * a receiver's iteration instead of failing it.
   */
  fail(err: AmqpError, final: boolean, local = false): void {
    if (local) this.closedLocally = true;
    this.attaching?.reject(err);
    this.attaching = null;
    if (final) {
      this.wantsAttach = false;
      this.state = 'closed';
      this.error ??= err;
      this.session.forget(this);
      this.detaching?.();
    }
    this.failPending(err, final);
  }
}
