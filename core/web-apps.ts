/** One file of a web application, ready to send: its bytes, and gzipped when that is smaller. */
export interface WebAsset {
  body: Buffer;
  /** The same bytes gzipped, when a client that accepts gzip saves by it. */
  gzip?: Buffer;
  contentType: string;
  /** A strong validator of the bytes (RFC 9110 §8.8.3), so a page revalidated with `no-cache` costs a 304. */
  etag: string;
  /** `Cache-Control`: long and immutable for files with a content hash in their name, `no-cache` for the page. */
  cacheControl: string;
  /** Extra headers (the page's `Content-Security-Policy`…). */
  headers?: Record<string, string>;
}

/**
 * Static files a plugin (the portal) hands to the HTTP transport to serve beside the API, by exact
 * path. They are public: a page must load before anyone can log in. Exact paths keep the REST
 * transport's default deny: a path not listed here still needs a token, whatever it looks like
 * (docs/portal.md, "Serving").
 */
export class WebApps {
  private readonly assets = new Map<string, WebAsset>();

  /** Adds files by path (`/`, `/assets/app-3F2A1B.js`); a path served already is refused, as two apps on one path is a mistake. */
  mount(files: ReadonlyMap<string, WebAsset>): void {
    for (const path of files.keys()) if (this.assets.has(path)) throw new Error(`${path} is served by another web app already`);
    for (const [path, asset] of files) this.assets.set(path, asset);
  }

  /** Removes them again (the plugin stopped). */
  unmount(files: ReadonlyMap<string, WebAsset>): void {
    for (const [path, asset] of files) if (this.assets.get(path) === asset) this.assets.delete(path);
  }

  get(path: string): WebAsset | undefined {
    return this.assets.get(path);
  }
}
