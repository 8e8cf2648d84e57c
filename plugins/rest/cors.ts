import type Koa from 'koa';

export interface CorsOptions {
  /** Origins allowed to read answers (`https://app.example`), or `*` for any; none by default. */
  origins: string[];
  /** Seconds a browser may cache a preflight answer. */
  maxAge: number;
}

/**
 * Cross-origin access for browser applications (the Fetch standard's CORS protocol). The API is
 * authenticated by bearer tokens, never cookies, so credentials are not allowed and `*` exposes
 * nothing a page could not already send. An origin not listed gets no CORS headers: the browser
 * keeps the answer from the page. A preflight (OPTIONS with Access-Control-Request-Method) is
 * answered here, before authentication: it carries no token.
 */
export function cors(options: CorsOptions): Koa.Middleware {
  const any = options.origins.includes('*');
  const allowed = new Set(options.origins);
  return async (ctx, next) => {
    const origin = ctx.get('origin');
    if (origin === '' || (!any && !allowed.has(origin))) return next();
    ctx.set('Access-Control-Allow-Origin', any ? '*' : origin);
    if (!any) ctx.vary('Origin');
    ctx.set('Access-Control-Expose-Headers', 'Retry-After, WWW-Authenticate');
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method') !== '') {
      ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE');
      ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      ctx.set('Access-Control-Max-Age', String(options.maxAge));
      ctx.status = 204;
      return;
    }
    return next();
  };
}
