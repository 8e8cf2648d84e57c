// Claims-based security for Event Hubs: a SAS token put on the `$cbs` node before a link to
// the hub attaches, and again before it expires. The exchange is a request/response pair of
// links ("AMQP 1.0 in Azure Service Bus and Event Hubs protocol guide", claims-based
// authorization; AMQP CBS working draft): the request carries application-properties
// operation = put-token, type = servicebus.windows.net:sastoken, name = the audience, and the
// token as an amqp-value string; the reply, correlated by correlation-id = our message-id,
// carries status-code 200 or 202 on success and status-description otherwise.
import { createHmac, randomUUID } from 'node:crypto';
import { AmqpError, Condition, type Connection, type Receiver, type Sender } from '@nitrogen/amqp';

export const SAS_TOKEN_TYPE = 'servicebus.windows.net:sastoken';

/**
 * A Shared Access Signature (Event Hubs "Authenticate access with SAS"): the HMAC-SHA256,
 * keyed with the key's text, of the URL-encoded resource, a newline and the expiry in Unix
 * seconds; the signature is base64 and then URL-encoded.
 */
export function sasToken(audience: string, keyName: string, key: string, expiry: number): string {
  const resource = encodeURIComponent(audience);
  const signature = createHmac('sha256', key).update(`${resource}\n${expiry}`).digest('base64');
  return `SharedAccessSignature sr=${resource}&sig=${encodeURIComponent(signature)}&se=${expiry}&skn=${encodeURIComponent(keyName)}`;
}

/** The `$cbs` node refused a token, or did not answer. */
class CbsError extends AmqpError {
  constructor(
    readonly status: number | undefined,
    description: string,
  ) {
    super('ERR_AMQP_CBS', { condition: Condition.UnauthorizedAccess, description });
  }
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class CbsClient {
  private readonly pending = new Map<string, Pending>();

  private constructor(
    private readonly sender: Sender,
    private readonly receiver: Receiver,
    private readonly replyTo: string,
    private readonly timeoutMs: number,
  ) {
    void this.readReplies();
  }

  /** Attaches the request and reply links on `$cbs`; the reply link's name is the reply-to address. */
  static async open(connection: Connection, timeoutMs: number): Promise<CbsClient> {
    const replyTo = `cbs-${randomUUID()}`;
    const sender = await connection.createSender('$cbs');
    const receiver = await connection.createReceiver('$cbs', { name: replyTo, credit: 10 });
    return new CbsClient(sender, receiver, replyTo, timeoutMs);
  }

  /** Puts a SAS token for `audience`; rejects with CbsError when the node refuses it (401 for a wrong key). */
  putToken(audience: string, token: string): Promise<void> {
    const messageId = randomUUID();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(new CbsError(undefined, `no answer to put-token within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(messageId, { resolve, reject, timer });
      this.sender
        .send({
          properties: { messageId, replyTo: this.replyTo, to: '$cbs' },
          applicationProperties: { operation: 'put-token', type: SAS_TOKEN_TYPE, name: audience },
          body: token,
        })
        .catch((err: Error) => this.finish(messageId, err));
    });
  }

  private finish(id: string, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
  }

  private async readReplies(): Promise<void> {
    try {
      for await (const delivery of this.receiver) {
        delivery.accept();
        const { properties, applicationProperties } = delivery.message;
        const id = String(properties?.correlationId ?? '');
        const status = Number(applicationProperties?.['status-code']);
        // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a peer's property, shown as it comes
        const description = String(applicationProperties?.['status-description'] ?? '');
        this.finish(id, status === 200 || status === 202 ? undefined : new CbsError(status, `put-token refused with status ${status}${description ? `: ${description}` : ''}`));
      }
      throw new CbsError(undefined, 'the $cbs reply link was closed');
    } catch (err) {
      for (const id of [...this.pending.keys()]) this.finish(id, err as Error);
    }
  }
}
