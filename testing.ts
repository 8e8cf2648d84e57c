/**
 * `nitrogen/testing`: the conformance suite of each port (the idea of aedes-persistence's
 * abstract tests). An adapter outside this repository runs its port's suite from its own mocha
 * tests: each suite registers `describe`/`it` blocks on mocha's globals when called.
 *
 * ```ts
 * import { storeConformance } from 'nitrogen/testing';
 * storeConformance('my-store', { open: async () => { … }, close: async (store) => { … } });
 * ```
 */
export { storeConformance, type StoreHarness } from './test/conformance/store.js';
export { registryConformance, type RegistryHarness } from './test/conformance/registry.js';
export { identityConformance, type IdentityHarness } from './test/conformance/identity.js';
export { sinkConformance, type SinkHarness } from './test/conformance/sink.js';
