import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { definePlugin, inject, injectable, isNitrogenError, Tokens, type Authenticator, type Endpoints, type Ingestor, type InjectionToken, type Logger, type Transport } from 'nitrogen';
import { z } from 'zod';

const LineOptions = z.strictObject({ port: z.number().int().min(0).max(65535).default(0) });
type LineOptions = z.output<typeof LineOptions>;
const LineOptionsToken = Symbol('line.Options') as InjectionToken<LineOptions>;

/**
 * A transport written as a third party writes one, against the `nitrogen` entry only: one
 * message per line, `<principal id> <secret> <envelope JSON>`, answered `ok <message id>` once
 * the message is durably committed, or `error <code>`. Its container injects the server's
 * services, its options, its own logger and its instance name.
 */
@injectable()
export class LineTransport implements Transport {
  /** What happened to it, in order: `stop` (by the server), `dispose` (by its container). */
  readonly events: string[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    @inject(LineOptionsToken) private readonly options: LineOptions,
    @inject(Tokens.Authenticator) readonly authenticator: Authenticator,
    @inject(Tokens.Ingestor) private readonly ingestor: Ingestor,
    @inject(Tokens.Endpoints) private readonly endpoints: Endpoints,
    @inject(Tokens.Logger) readonly logger: Logger,
    @inject(Tokens.PluginName) readonly name: string,
  ) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.options.port, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    this.endpoints[this.name] = `tcp://127.0.0.1:${port}`;
    this.logger.info({ endpoint: this.endpoints[this.name] }, 'line transport listening');
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    createInterface({ input: socket }).on('line', (line) => {
      const [id = '', secret = '', ...rest] = line.split(' ');
      this.ingest(id, secret, rest.join(' '), socket.remoteAddress).then(
        (messageId) => socket.write(`ok ${messageId}\n`),
        (err: unknown) => socket.write(`error ${isNitrogenError(err) ? err.code : 'internal'}\n`),
      );
    });
  }

  private async ingest(id: string, secret: string, envelope: string, remoteAddress: string | undefined): Promise<string> {
    const { principal } = await this.authenticator.password(id, secret, { remoteAddress });
    const messages = await this.ingestor.ingest(principal, [this.ingestor.parse(envelope)], { transport: this.name });
    this.ingestor.fanOut(messages, { transport: this.name });
    return messages[0]!.id;
  }

  async stop(): Promise<void> {
    this.events.push('stop');
    const server = this.server;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  dispose(): void {
    this.events.push('dispose');
  }
}

/** The plugin; each transport it creates is added to `created`, for the test to look at. */
export function lineTransportPlugin(created: LineTransport[] = []) {
  return definePlugin({
    name: 'line',
    kind: 'transport',
    options: LineOptions,
    needs: [Tokens.Authenticator, Tokens.Ingestor, Tokens.Endpoints],
    create: ({ container }, options) => {
      const transport = container.register(LineOptionsToken, { useValue: options }).resolve(LineTransport);
      created.push(transport);
      return transport;
    },
  });
}
