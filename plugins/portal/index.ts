import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NitrogenError } from '../../core/errors.js';
import { definePlugin } from '../../core/plugin.js';
import { Tokens } from '../../core/tokens.js';
import { loadAssets } from './assets.js';

/** Where `npm run build` (plugins/portal/scripts/bundle.mjs) writes the app, beside this file once compiled. */
export const BUILT_APP = fileURLToPath(new URL('./public/', import.meta.url));

/**
 * The portal (docs/portal.md): the web app people run a fleet with, served by the REST transport
 * at `/` on its own origin, so the app calls the API with no CORS and holds its token in memory.
 * Its files are public; every API call it makes carries the logged-in principal's token and
 * shows only what that principal may see.
 */
export const portalPlugin = definePlugin({
  name: 'portal',
  kind: 'transport',
  description: 'the web portal at / of the REST transport: devices, state, charts, commands, permissions, sinks, system',
  needs: [Tokens.WebApps, Tokens.Endpoints],
  options: z.strictObject({
    /** Another build of the app to serve (a directory holding index.html); the one `npm run build` makes by default. */
    dir: z.string().min(1).optional(),
  }),
  create({ container, config, logger }, options) {
    const dir = options.dir ? resolve(options.dir) : BUILT_APP;
    const webApps = container.resolve(Tokens.WebApps);
    const endpoints = container.resolve(Tokens.Endpoints);
    let files: ReturnType<typeof loadAssets> | undefined;
    return {
      async start() {
        if (!existsSync(resolve(dir, 'index.html'))) {
          throw new NitrogenError('NITROGEN_ERR_PLUGIN', `the portal is not built (no index.html in ${dir}): run npm run build, or leave "portal" out of plugins`);
        }
        files = loadAssets(dir);
        webApps.mount(files);
        if (!config.plugins.some((p) => p.use === 'rest')) logger.warn('the portal is served by the REST transport, which is not configured: nothing serves it');
        // The REST transport starts before (plugins start in order) and has set its URL.
        const origin = endpoints.rest ? new URL(endpoints.rest).origin : undefined;
        if (origin) endpoints.portal = `${origin}/`;
        logger.info({ url: endpoints.portal, files: files.size }, 'portal mounted');
      },
      async stop() {
        if (files) webApps.unmount(files);
      },
    };
  },
});
