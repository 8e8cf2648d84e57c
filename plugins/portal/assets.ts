import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { WebAsset } from '../../core/web-apps.js';

/** Content types of what the build writes; anything else is not served. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * The page's policy (CSP Level 3): scripts, styles and connections from this origin only, no
 * inline script or style element, no plugins, no framing (clickjacking), no `<base>`
 * rewriting. An injected `<script>` does not run, which is what keeps the in-memory token in
 * memory. `style-src-attr 'unsafe-inline'` lets the charts and the virtualized list position
 * elements with `style` attributes, which runs no code.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Files whose name holds a content hash (`app-3F2A1BQZ.js`): a new build gets new names, so they never change. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+(\.map)?$/;

/**
 * Reads the built app from `dir` into the files to serve: `index.html` at `/` (and
 * `/index.html`), every other file at its path. Each is held in memory, and gzipped when that
 * saves bytes: the whole app is a few tens of KiB.
 */
export function loadAssets(dir: string): Map<string, WebAsset> {
  const files = new Map<string, WebAsset>();
  for (const file of walk(dir)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const path = '/' + relative(dir, file).split(sep).join('/');
    const body = readFileSync(file);
    const gzip = gzipSync(body, { level: 9 });
    const page = path === '/index.html';
    const asset: WebAsset = {
      body,
      ...(gzip.length < body.length * 0.9 ? { gzip } : {}),
      contentType: type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      cacheControl: HASHED.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...(page ? { headers: { 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' } } : {}),
    };
    files.set(path, asset);
    if (page) files.set('/', asset);
  }
  return files;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}
