import { useRef, useState } from 'preact/hooks';
import { rootGet } from '../api.ts';
import { LineChart, type Point } from '../chart.tsx';
import { parseMetrics } from '../metrics.ts';
import { errorText, Section, Status, usePoll } from '../ui.tsx';

interface Readiness {
  status: string;
  ready: boolean;
  checkedAt: string;
  components: Record<string, { kind: string; critical: boolean; status: string; since: string; reason?: string }>;
}

const KEEP = 150;

/**
 * Health from /ready, and throughput and latency from /metrics, scraped every 2 s: throughput is
 * the growth of nitrogen_messages_ingested_total, the commit latency the mean of
 * nitrogen_commit_duration_seconds over the interval.
 */
export function SystemPage() {
  const [ready, setReady] = useState<Readiness | null>(null);
  const [error, setError] = useState('');
  const [charts, setCharts] = useState<{ rate: Point[]; latency: Point[]; connections: Point[]; pending: Point[] }>({ rate: [], latency: [], connections: [], pending: [] });
  const previous = useRef<{ t: number; m: Map<string, number> } | null>(null);

  usePoll(
    async () => {
      try {
        const [r, text] = await Promise.all([rootGet<Readiness>('/ready'), rootGet<string>('/metrics')]);
        setReady(r);
        setError('');
        const t = Date.now();
        const m = parseMetrics(text);
        const before = previous.current;
        previous.current = { t, m };
        if (!before) return;
        const dt = (t - before.t) / 1000;
        const delta = (k: string) => (m.get(k) ?? 0) - (before.m.get(k) ?? 0);
        const commits = delta('nitrogen_commit_duration_seconds_count');
        const add = (list: Point[], v: number) => [...list, { t, v }].slice(-KEEP);
        setCharts((c) => ({
          rate: add(c.rate, Math.max(0, delta('nitrogen_messages_ingested_total')) / dt),
          latency: commits > 0 ? add(c.latency, (delta('nitrogen_commit_duration_seconds_sum') / commits) * 1000) : c.latency,
          connections: add(c.connections, m.get('nitrogen_mqtt_connections') ?? 0),
          pending: add(c.pending, m.get('nitrogen_ingest_pending_messages') ?? 0),
        }));
      } catch (err) {
        setError(errorText(err));
      }
    },
    2000,
    [],
  );

  return (
    <>
      <h1>System</h1>
      {error && <Status text={error} error />}
      <Section title="Health" id="health">
        {ready && (
          <>
            <p>
              <span class={`badge ${ready.status === 'ok' ? 'online' : ready.ready ? 'warn' : 'offline'}`} data-testid="system-status">
                {ready.status}
              </span>{' '}
              {ready.ready ? 'ready' : 'not ready'} · checked {new Date(ready.checkedAt).toLocaleTimeString()}
            </p>
            <div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Component</th>
                    <th scope="col">Status</th>
                    <th scope="col">Since</th>
                    <th scope="col">Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(ready.components).map(([name, c]) => (
                    <tr key={name}>
                      <td>
                        {name}
                        {c.critical ? '' : <span class="muted"> (not critical)</span>}
                      </td>
                      <td>{c.status}</td>
                      <td>{new Date(c.since).toLocaleString()}</td>
                      <td>{c.reason ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </Section>
      <Section title="Throughput and latency" id="metrics">
        <div class="charts">
          <LineChart title="Ingested" unit="msg/s" points={charts.rate} />
          <LineChart title="Commit latency" unit="ms" points={charts.latency} />
          <LineChart title="MQTT connections" points={charts.connections} />
          <LineChart title="Pending commits" points={charts.pending} />
        </div>
      </Section>
    </>
  );
}
