import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { defaultCatalog } from '../../catalog.js';
import type { NitrogenConfigInput } from '../../core/config.js';
import { createServer } from '../../core/server.js';
import { ADMIN_SECRET, TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';

/** The REST abuse tests' shared pieces: a server whose logs can be read, and raw TCP clients. */

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export const WARN = 40;
export const ERROR = 50;

/**
 * A real server on port 0 (as startServer) with `rest` options of the test's choosing, logging at
 * debug into `logs`: what an attack makes the server write is part of what the test checks.
 */
export async function startLoggedServer(rest: Record<string, unknown> = {}, config: NitrogenConfigInput = {}): Promise<{ t: TestServer; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const dir = tempDir();
  const server = createServer(
    {
      host: '127.0.0.1',
      adminSecret: ADMIN_SECRET,
      plugins: [
        { use: 'mqtt', options: { port: 0 } },
        { use: 'rest', options: { port: 0, ...rest } },
      ],
      ...config,
      dataDir: dir.path,
    },
    { catalog: defaultCatalog, logger },
  );
  await server.start();
  const t = new TestServer(server, dir.path, dir.remove);
  t.adminToken = await t.token('admin', ADMIN_SECRET);
  return { t, logs };
}

/** A raw TCP connection to the REST port, for what fetch cannot do: drip bytes, hold sockets open. */
export class RawConnection {
  received = '';
  private consumed = 0;
  /** Resolves when the server has closed (or reset) the connection. */
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (this.received += chunk));
    socket.on('error', () => {}); // a reset after the answer is an ending like any other here
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(t: TestServer): Promise<RawConnection> {
    const url = new URL(t.restUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      socket.once('connect', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * Writes `text` one character every `everyMs` until the server closes the connection; the
   * result tells how many characters went out.
   */
  drip(text: string, everyMs: number): { sent: number } {
    const progress = { sent: 0 };
    const timer = setInterval(() => {
      if (this.socket.destroyed || progress.sent >= text.length) clearInterval(timer);
      else this.socket.write(text[progress.sent++]!);
    }, everyMs);
    this.socket.once('close', () => clearInterval(timer));
    return progress;
  }

  /**
   * Sends `GET path` and resolves with the response's status once it has arrived whole (by its
   * Content-Length), the connection kept open if the server keeps it.
   */
  get(path: string): Promise<number> {
    // From the end of the last response read: a refusal may arrive before the request is written.
    const start = this.consumed;
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: nitrogen\r\n\r\n`);
    return new Promise((resolve, reject) => {
      const check = () => {
        const text = this.received.slice(start);
        const split = text.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? Number.NaN);
        if (split === -1 || Buffer.byteLength(text.slice(split + 4)) < length) return;
        this.consumed = start + split + 4 + length;
        this.socket.off('data', check).off('close', closed);
        resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]));
      };
      const closed = () => {
        check();
        reject(new Error(`connection closed before a whole response: ${JSON.stringify(this.received.slice(start, start + 200))}`));
      };
      this.socket.on('data', check).once('close', closed);
      check();
    });
  }

  /** The status and JSON body of the response received, once the connection has closed. */
  async response(): Promise<{ status: number; headers: string; body: any }> {
    await this.closed;
    const split = this.received.indexOf('\r\n\r\n');
    if (split === -1) throw new Error(`no HTTP response before the connection closed: ${JSON.stringify(this.received.slice(0, 200))}`);
    const head = this.received.slice(0, split);
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body: JSON.parse(this.received.slice(split + 4)) };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** `[[[…]]]` nested `depth` deep. */
export function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
