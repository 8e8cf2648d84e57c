import { ClientError } from './errors.js';

export interface SseEvent {
  event: string;
  data: string;
  id: string;
}

/**
 * Server-Sent Events, as the HTML standard's "interpreting an event stream" reads them: lines
 * end in CRLF, LF or CR; `:` starts a comment; `data` lines join with LF; an empty line
 * dispatches. `maxEventChars` bounds what one event may hold, so a server that never ends a
 * line or an event cannot make the client buffer without end.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataChars = 0;
  private event = '';
  private id = '';
  private lastWasCR = false;

  constructor(
    private readonly maxEventChars: number,
    private readonly onEvent: (event: SseEvent) => void,
    private readonly onComment: (text: string) => void = () => {},
  ) {}

  push(text: string): void {
    let start = 0;
    let i = 0;
    // A CRLF split across two chunks: the LF ends nothing.
    if (this.lastWasCR && text.charCodeAt(0) === 10) start = i = 1;
    this.lastWasCR = false;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer + text.slice(start, i);
      this.buffer = '';
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else this.lastWasCR = true;
      }
      start = i + 1;
      this.line(line);
    }
    this.buffer += text.slice(start);
    if (this.buffer.length + this.dataChars > this.maxEventChars) this.tooLarge();
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.data = [];
      this.dataChars = 0;
      this.event = '';
      return;
    }
    if (line.charCodeAt(0) === 58) return this.onComment(line.slice(1).trimStart());
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.dataChars += value.length + 1;
      if (this.dataChars > this.maxEventChars) this.tooLarge();
    } else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields: reconnecting is the client's own policy
  }

  private tooLarge(): never {
    throw new ClientError('NITROGEN_CLIENT_PROTOCOL', `a Server-Sent Event longer than maxEventBytes (${this.maxEventChars}) characters`, { limit: 'maxEventBytes' });
  }
}

/** Reads a fetch response body as SSE until it ends, `signal` aborts, or the parser refuses it. */
export async function readEvents(body: ReadableStream<Uint8Array>, parser: SseParser, signal: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parser.push(decoder.decode(value, { stream: true }));
    }
  } catch (err) {
    cancel();
    throw err;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
