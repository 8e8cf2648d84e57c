import type { IncomingMessage } from 'node:http';
import { NitrogenError } from '../../core/errors.js';
import { parseJson } from '../../core/message.js';

/**
 * Reads a JSON request body, refusing anything over `limit` bytes as soon as it is known
 * (Content-Length, or while streaming) so an oversize upload is not buffered whole.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    throw new NitrogenError('NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE', `Content-Type must be application/json, got '${type}'`);
  }
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume(); // drain the rest so the response can still be sent
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  if (size === 0) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'a JSON body is required');
  return parseJson(Buffer.concat(chunks, size).toString('utf8'));
}

function tooLarge(limit: number): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);
}
