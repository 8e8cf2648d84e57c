import { NoneStore } from '../../adapters/memory/index.js';
import { definePlugin } from '../../core/plugin.js';

/**
 * For `bench:ingest --store discard`: a store that keeps nothing and costs nothing, under a name
 * of its own (the server rightly refuses "none" unless the sinks acknowledge). Nitrogen with it
 * shows what the rest of the pipeline allows on the machine, the ceiling for any store.
 */
export default definePlugin({
  name: 'discard',
  kind: 'store',
  description: 'benchmark reference: acknowledges and drops every message',
  create: () => new NoneStore(),
});
