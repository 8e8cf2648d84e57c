import type { IncomingMessage } from 'node:http';
import { NitrogenError } from '../../core/errors.js';
import { parseJson } from '../../core/message.js';
import type { BodyLimits } from './context.js';

/**
 * Reads a JSON request body under the request's limits (`ctx.state.bodyLimits`: small before
 * authentication, the configured ones after), refusing an oversize body as soon as it is known
 * (Content-Length, or while streaming) so it is never buffered whole.
 */
export async function readJson(ctx: { req: IncomingMessage; state: { bodyLimits: BodyLimits } }): Promise<unknown> {
  const { req } = ctx;
  const limits = ctx.state.bodyLimits;
  checkMediaType(req.headers['content-type']);
  const declared = Number(req.headers['content-length']);
  if (declared > limits.maxBytes) throw tooLarge(limits);
  const body = await readBody(req, limits);
  if (body.length === 0) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'a JSON body is required');
  return parseJson(body.toString('utf8'), limits.maxDepth);
}

/** The client went away before its request was whole: there is no one to answer. */
export class RequestAborted extends Error {
  constructor() {
    super('the client closed the connection before its request body was complete');
    this.name = 'RequestAborted';
  }
}

/**
 * Listens to the stream rather than iterating it: leaving a `for await` early destroys the
 * request, and with it the socket the 413 has to be written to.
 */
function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Gone before the route got here (while authenticating): no event would come.
    if (req.destroyed) return reject(new RequestAborted());
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (outcome: () => void) => {
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limits.maxBytes) chunks.push(chunk);
      // The rest is never read: the 413 closes the connection (rest-transport.ts, errors()).
      else done(() => reject(tooLarge(limits)));
    };
    const onEnd = () => done(() => resolve(Buffer.concat(chunks, size)));
    const onGone = () => done(() => reject(new RequestAborted()));
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
  });
}

/**
 * Only `application/json` (RFC 8259 §11), in UTF-8; a missing Content-Type is taken as JSON.
 * Types that merely end in `json` are other formats: `application/json-seq` is a sequence of
 * texts (RFC 7464) and `application/json-patch+json` a list of edits (RFC 6902), neither of
 * which this API means by a body.
 */
function checkMediaType(header: string | undefined): void {
  if (header === undefined) return;
  const [type = '', ...parameters] = header.split(';');
  if (type.trim().toLowerCase() !== 'application/json') throw unsupported(`Content-Type must be application/json, got '${type.trim().slice(0, 100)}'`);
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    const charset = value
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') throw unsupported(`a JSON body must be UTF-8 (RFC 8259 §8.1), got charset '${charset.slice(0, 40)}'`);
  }
}

function unsupported(message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE', message);
}

function tooLarge({ maxBytes, bytesOption }: BodyLimits): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes (${bytesOption})`, { details: { limit: bytesOption, max: maxBytes } });
}
