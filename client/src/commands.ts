import { replyType, type Message, type OutgoingMessage } from './envelope.js';
import { ClientError } from './errors.js';
import type { Sending } from './outbox.js';
import type { Subscription } from './subscription.js';

export type CommandHandler = (command: Message) => unknown;

/** Commands already handled, by sender and id, so a redelivered one is not run twice. */
const REMEMBERED = 1000;
/** The tag of a reply that reports a failed command. */
const ERROR_TAG = 'error';

export interface InboxHost {
  /** Subscribes to everything addressed to this principal. */
  subscribeToSelf(handler: (message: Message) => void): Subscription;
  send(message: OutgoingMessage): Sending;
  /** A handler failed or its reply could not be sent. */
  error(error: Error): void;
}

/**
 * What arrives addressed to this principal: commands, handed to the handler of their type, and
 * replies (messages with `responseTo`), handed to the `command` call waiting for them. Every
 * command gets a reply: the handler's result as its body, or, when it throws, `{error: {message}}`
 * tagged `error`. One subscription serves both, made when first needed.
 */
export class Inbox {
  private subscription: Subscription | null = null;
  private readonly handlers = new Map<string, CommandHandler>();
  private readonly waiting = new Map<string, { resolve(reply: Message): void; reject(error: Error): void }>();
  private readonly handled = new Set<string>();

  constructor(private readonly host: InboxHost) {}

  /** Handles commands of `types` (`'*'`: every type without a handler of its own). */
  async handle(types: string[], handler: CommandHandler): Promise<Subscription> {
    for (const t of types) {
      if (this.handlers.has(t)) throw new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', `onCommand: commands of type ${t} already have a handler`, { option: 'type' });
    }
    for (const t of types) this.handlers.set(t, handler);
    const subscription = this.open();
    const close = async () => {
      for (const t of types) if (this.handlers.get(t) === handler) this.handlers.delete(t);
    };
    return { ready: subscription.ready, close };
  }

  /** Sends a command and resolves with its reply; the subscription is ready before the command goes. */
  async command(message: OutgoingMessage & { to: string }, timeoutMs: number): Promise<Message> {
    await this.open().ready;
    const sending = this.host.send(message);
    const reply = new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(sending.id);
        reject(new ClientError('NITROGEN_CLIENT_TIMEOUT', `no reply to command ${sending.id} (${message.type} to ${message.to}) within ${timeoutMs} ms`, { limit: 'commandTimeoutMs', id: sending.id }));
      }, timeoutMs);
      this.waiting.set(sending.id, {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
    try {
      await sending;
    } catch (err) {
      this.waiting.get(sending.id)?.reject(err as Error);
      this.waiting.delete(sending.id);
    }
    const answer = await reply;
    if (answer.tags?.includes(ERROR_TAG)) {
      const text = (answer.body as { error?: { message?: unknown } } | null)?.error?.message;
      throw new ClientError('NITROGEN_CLIENT_COMMAND_FAILED', `command ${sending.id} failed: ${typeof text === 'string' ? text : 'no message'}`, { reply: answer });
    }
    return answer;
  }

  async close(): Promise<void> {
    const error = new ClientError('NITROGEN_CLIENT_CLOSED', 'the session closed before the reply came');
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
    await this.subscription?.close();
  }

  private open(): Subscription {
    this.subscription ??= this.host.subscribeToSelf((m) => this.arrived(m));
    return this.subscription;
  }

  private arrived(message: Message): void {
    if (message.responseTo && message.responseTo.length > 0) {
      for (const id of message.responseTo) {
        const w = this.waiting.get(id);
        if (w) {
          this.waiting.delete(id);
          w.resolve(message);
        }
      }
      return;
    }
    const handler = this.handlers.get(message.type) ?? this.handlers.get('*');
    if (!handler) return;
    const key = `${message.from}\n${message.id}`;
    if (this.handled.has(key)) return;
    this.handled.add(key);
    if (this.handled.size > REMEMBERED) this.handled.delete(this.handled.values().next().value!);
    void this.run(handler, message);
  }

  private async run(handler: CommandHandler, command: Message): Promise<void> {
    let reply: OutgoingMessage;
    const base = { type: replyType(command.type), to: command.from, responseTo: [command.id] };
    try {
      reply = { ...base, body: (await handler(command)) ?? null };
    } catch (err) {
      reply = { ...base, body: { error: { message: (err as Error)?.message ?? String(err) } }, tags: [ERROR_TAG] };
    }
    try {
      await this.host.send(reply);
    } catch (err) {
      this.host.error(err as Error);
    }
  }
}
