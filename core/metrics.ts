import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The core's own metrics, on a registry per server (never prom-client's global one). */
export class CoreMetrics {
  readonly ingested: Counter<'transport'>;
  readonly rejected: Counter<'transport' | 'code'>;
  readonly commitBatch: Histogram;
  readonly commitSeconds: Histogram;
  readonly pending: Gauge;

  constructor(readonly registry: Registry) {
    this.ingested = new Counter({ name: 'nitrogen_messages_ingested_total', help: 'Messages durably committed and acknowledged', labelNames: ['transport'], registers: [registry] });
    this.rejected = new Counter({ name: 'nitrogen_messages_rejected_total', help: 'Messages refused, by error code', labelNames: ['transport', 'code'], registers: [registry] });
    this.commitBatch = new Histogram({ name: 'nitrogen_commit_batch_messages', help: 'Messages per group commit', buckets: [1, 10, 50, 100, 500, 1000, 5000], registers: [registry] });
    this.commitSeconds = new Histogram({ name: 'nitrogen_commit_duration_seconds', help: 'Time of one group commit', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers: [registry] });
    this.pending = new Gauge({ name: 'nitrogen_ingest_pending_messages', help: 'Messages waiting for or in a commit', registers: [registry] });
  }
}

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
