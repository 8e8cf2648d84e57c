// The fake Event Hubs lives beside the benchmarks (bench:sink runs it as its downstream, and
// benchmarks do not import test helpers); the tests take it from there.
export * from '../../bench/lib/eventhubs-peer.js';
