import { useEffect, useRef, useState } from 'preact/hooks';
import { query, type Message, type Presence, type Principal, type Session } from '../api.ts';
import { LineChart, Track, type Point, type Position } from '../chart.tsx';
import { ago, errorText, OnlineBadge, SecretsDialog, Section, Status, useNow, usePoll, type Credential } from '../ui.tsx';

interface DeviceState {
  principal: Principal;
  presence: Presence | null;
  latest: Record<string, Message>;
  twin?: { desired: Record<string, unknown>; desiredVersion: number; reported: Record<string, unknown>; reportedVersion: number; delta: Record<string, unknown> | null };
}

/** The car sample's gauges first; any other device: the first numeric fields of its telemetry. */
const PREFERRED: Array<[string, string, string]> = [
  ['speedKmh', 'Speed', 'km/h'],
  ['rpm', 'Engine', 'rpm'],
  ['fuelL', 'Fuel', 'L'],
  ['engineTempC', 'Temperature', '°C'],
];
const SKIP = new Set(['lat', 'lon', 'heading', 'odometerKm', 'gear']);
/** Samples kept per chart and positions per track. */
const KEEP = 300;

function numericFields(body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  return Object.entries(body as Record<string, unknown>)
    .filter(([k, v]) => typeof v === 'number' && Number.isFinite(v) && !SKIP.has(k))
    .map(([k]) => k);
}

function positionOf(m: Message): Position | null {
  const b = m.body as { lat?: unknown; lon?: unknown } | undefined;
  return b && typeof b.lat === 'number' && typeof b.lon === 'number' ? { lat: b.lat, lon: b.lon } : null;
}

export function DevicePage({ session, id }: { session: Session; id: string }) {
  const [state, setState] = useState<DeviceState | null>(null);
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  const [series, setSeries] = useState<Record<string, Point[]>>({});
  const [track, setTrack] = useState<Position[]>([]);
  const [secret, setSecret] = useState<Credential[] | null>(null);
  const [live, setLive] = useState<'connecting' | 'live' | 'off'>('connecting');
  const now = useNow(5000);

  async function refresh() {
    try {
      setState(await session.call<DeviceState>('GET', `/principals/${encodeURIComponent(id)}/state`));
    } catch (err) {
      setStatus({ text: errorText(err), error: true });
      throw err;
    }
  }
  usePoll(refresh, 5000, [id]);

  function take(messages: Message[]) {
    const points: Record<string, Point[]> = {};
    const positions: Position[] = [];
    for (const m of messages) {
      const p = positionOf(m);
      if (p) positions.push(p);
      if (m.type !== 'telemetry') continue;
      for (const k of numericFields(m.body)) (points[k] ??= []).push({ t: Date.parse(m.ts), v: (m.body as Record<string, number>)[k]! });
    }
    if (positions.length) setTrack((t) => [...t, ...positions].slice(-KEEP));
    if (Object.keys(points).length)
      setSeries((s) => {
        const next = { ...s };
        for (const [k, v] of Object.entries(points)) next[k] = [...(next[k] ?? []), ...v].slice(-KEEP);
        return next;
      });
  }

  // Seeded from what is stored, then live over SSE (the client library, with a stream ticket).
  useEffect(() => {
    let closed = false;
    let subscription: { close(): Promise<void> } | undefined;
    void (async () => {
      try {
        const recent = await session.call<{ messages: Message[] }>('GET', `/messages${query({ from: id, order: 'desc', limit: KEEP })}`);
        if (closed) return;
        const oldestFirst = recent.messages.reverse();
        take(oldestFirst);
        const seen = new Set(oldestFirst.map((m) => m.id));
        const client = await session.live();
        if (closed) return;
        const sub = client.onMessage({ from: id }, (m) => {
          if (!seen.has(m.id)) take([m as Message]);
        });
        subscription = sub;
        await sub.ready;
        if (!closed) setLive('live');
      } catch (err) {
        if (!closed) {
          setLive('off');
          setStatus({ text: `Live updates are off: ${errorText(err)}`, error: true });
        }
      }
    })();
    return () => {
      closed = true;
      void subscription?.close();
    };
  }, [id]);

  const principal = state?.principal;
  const fields = Object.keys(series);
  const charts: Array<[string, string, string]> = PREFERRED.filter(([k]) => fields.includes(k));
  for (const k of fields) if (charts.length < 4 && !charts.some(([c]) => c === k)) charts.push([k, k, '']);

  async function act(what: () => Promise<void>) {
    try {
      await what();
    } catch (err) {
      setStatus({ text: errorText(err), error: true });
    }
  }

  return (
    <>
      <p class="crumbs">
        <a href="#/devices">Devices</a> / <span>{id}</span>
      </p>
      <h1>
        {id} {principal?.name && <span class="muted">{principal.name}</span>}
      </h1>
      <div class="device-head">
        <p>
          <OnlineBadge connected={state?.presence?.connected} />{' '}
          {state?.presence?.connected
            ? `connected ${ago(state.presence.since, now)} over ${state.presence.transport}${state.presence.address ? ` from ${state.presence.address}` : ''}`
            : `last seen ${ago(state?.presence?.since ?? principal?.lastSeenAt, now)}`}
          {principal && !principal.enabled && <span class="badge disabled">disabled</span>}{' '}
          <span class="muted" data-testid="live-state">
            · {live === 'live' ? 'live' : live === 'connecting' ? 'connecting…' : 'not live'}
          </span>
        </p>
        {principal && (
          <div class="actions">
            <button
              type="button"
              class="secondary"
              onClick={() =>
                act(async () => {
                  await session.call('PATCH', `/principals/${encodeURIComponent(id)}`, { enabled: !principal.enabled });
                  setStatus({ text: principal.enabled ? `${id} is disabled: it cannot connect, its sessions were closed.` : `${id} is enabled.` });
                  await refresh();
                })
              }
            >
              {principal.enabled ? 'Disable' : 'Enable'}
            </button>
            <button
              type="button"
              class="secondary"
              onClick={() =>
                act(async () => {
                  if (!confirm(`Rotate the secret of ${id}? Its current secret stops working at once.`)) return;
                  const res = await session.call<{ secret: string }>('POST', `/principals/${encodeURIComponent(id)}/secret`);
                  setSecret([{ id, secret: res.secret }]);
                })
              }
            >
              Rotate secret
            </button>
            <button
              type="button"
              class="danger"
              onClick={() =>
                act(async () => {
                  if (!confirm(`Delete ${id}? Its permission records go with it.`)) return;
                  await session.call('DELETE', `/principals/${encodeURIComponent(id)}`);
                  location.hash = '#/devices';
                })
              }
            >
              Delete
            </button>
          </div>
        )}
      </div>
      {status.text && <Status {...status} />}
      <Section title="Live telemetry" id="charts">
        {charts.length === 0 ? (
          <p class="muted">No numeric telemetry yet.</p>
        ) : (
          <div class="charts">
            {charts.map(([k, title, unit]) => (
              <LineChart key={k} title={title} unit={unit} points={series[k] ?? []} />
            ))}
          </div>
        )}
      </Section>
      <div class="grid2">
        <Section title="Track" id="track">
          <Track positions={track} />
        </Section>
        <CommandForm session={session} id={id} />
      </div>
      <Section title="Last-known state" id="state">
        {state && Object.keys(state.latest).length === 0 && <p class="muted">Nothing received yet.</p>}
        {state && (
          <dl class="latest">
            {Object.entries(state.latest).map(([type, m]) => (
              <div key={type}>
                <dt>
                  {type} <span class="muted">{ago(m.ts, now)}</span>
                </dt>
                <dd>
                  <pre>{JSON.stringify(m.body, null, 1)}</pre>
                </dd>
              </div>
            ))}
          </dl>
        )}
        {state?.twin && (state.twin.desiredVersion > 0 || state.twin.reportedVersion > 0) && (
          <dl class="latest">
            <div>
              <dt>
                twin: desired <span class="muted">v{state.twin.desiredVersion}</span>
              </dt>
              <dd>
                <pre>{JSON.stringify(state.twin.desired, null, 1)}</pre>
              </dd>
            </div>
            <div>
              <dt>
                twin: reported <span class="muted">v{state.twin.reportedVersion}</span>
              </dt>
              <dd>
                <pre>{JSON.stringify(state.twin.reported, null, 1)}</pre>
              </dd>
            </div>
            {state.twin.delta && (
              <div>
                <dt>twin: still to apply</dt>
                <dd>
                  <pre>{JSON.stringify(state.twin.delta, null, 1)}</pre>
                </dd>
              </div>
            )}
          </dl>
        )}
      </Section>
      <MessagesTable session={session} id={id} />
      {secret && <SecretsDialog title={`New secret of ${id}`} credentials={secret} onClose={() => setSecret(null)} />}
    </>
  );
}

function CommandForm({ session, id }: { session: Session; id: string }) {
  const [result, setResult] = useState<{ text: string; error?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Section title="Send a command" id="command">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          let body: unknown;
          try {
            const text = String(data.get('body')).trim();
            body = text ? JSON.parse(text) : undefined;
          } catch {
            setResult({ text: 'The body is not valid JSON.', error: true });
            return;
          }
          setBusy(true);
          setResult({ text: 'Sent; waiting for the reply…' });
          try {
            const client = await session.live();
            const reply = await client.command(id, String(data.get('type')), body, { timeoutMs: Number(data.get('timeout')) * 1000 });
            setResult({ text: JSON.stringify(reply.body) });
          } catch (err) {
            // No reply: the usual cause is a device not allowed to answer (docs/api.md, "Sending to a principal").
            const hint =
              (err as { code?: string }).code === 'NITROGEN_CLIENT_TIMEOUT' ? ' It may be offline, or may not answer you: a device answers whoever may send to it, and answers admin only with a record allowing it send on admin.' : '';
            setResult({ text: errorText(err) + hint, error: true });
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="cmd-type">Type</label>
          <input id="cmd-type" name="type" required pattern="[A-Za-z0-9._\-]{1,128}" placeholder="unlock" />
        </div>
        <div class="field">
          <label for="cmd-body">Body (JSON)</label>
          <textarea id="cmd-body" name="body" rows={3} placeholder='{"door": "driver"}' />
        </div>
        <div class="field">
          <label for="cmd-timeout">Wait for the reply (s)</label>
          <input id="cmd-timeout" name="timeout" type="number" min="1" max="300" value="15" />
        </div>
        <button type="submit" disabled={busy}>
          Send
        </button>
      </form>
      {result && (
        <div class={result.error ? 'reply error' : 'reply'} role="status" aria-live="polite">
          <span class="muted">Reply:</span> <output data-testid="command-reply">{result.text}</output>
        </div>
      )}
    </Section>
  );
}

/** Stored messages from or to the device, filtered, a page at a time (keyset paging by cursor). */
function MessagesTable({ session, id }: { session: Session; id: string }) {
  const [filters, setFilters] = useState({ type: '', since: '', until: '', order: 'desc', direction: 'from' });
  const [page, setPage] = useState<{ messages: Message[]; next: string | null; cursors: Array<string | undefined> }>({ messages: [], next: null, cursors: [undefined] });
  const [error, setError] = useState('');
  const form = useRef<HTMLFormElement>(null);

  async function load(cursor: string | undefined, cursors: Array<string | undefined>) {
    try {
      const iso = (v: string) => (v ? new Date(v).toISOString() : undefined);
      const res = await session.call<{ messages: Message[]; next: string | null }>(
        'GET',
        `/messages${query({ [filters.direction]: id, type: filters.type, since: iso(filters.since), until: iso(filters.until), order: filters.order, limit: 25, cursor })}`,
      );
      setPage({ messages: res.messages, next: res.next, cursors });
      setError('');
    } catch (err) {
      setError(errorText(err));
    }
  }
  useEffect(() => void load(undefined, [undefined]), [filters]);

  return (
    <Section title="Messages" id="messages">
      <form
        ref={form}
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const d = new FormData(e.currentTarget);
          setFilters({ type: String(d.get('type')), since: String(d.get('since')), until: String(d.get('until')), order: String(d.get('order')), direction: String(d.get('direction')) });
        }}
      >
        <div class="field">
          <label for="msg-direction">Messages</label>
          <select id="msg-direction" name="direction">
            <option value="from">sent by it</option>
            <option value="to">sent to it</option>
          </select>
        </div>
        <div class="field">
          <label for="msg-type">Types (comma-separated)</label>
          <input id="msg-type" name="type" placeholder="telemetry,trip" />
        </div>
        <div class="field">
          <label for="msg-since">Since</label>
          <input id="msg-since" name="since" type="datetime-local" step="1" />
        </div>
        <div class="field">
          <label for="msg-until">Until</label>
          <input id="msg-until" name="until" type="datetime-local" step="1" />
        </div>
        <div class="field">
          <label for="msg-order">Order</label>
          <select id="msg-order" name="order">
            <option value="desc">newest first</option>
            <option value="asc">oldest first</option>
          </select>
        </div>
        <button type="submit">Apply</button>
      </form>
      {error && <Status text={error} error />}
      <div class="scroll">
        <table class="messages">
          <caption class="sr-only">Messages of {id}</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Type</th>
              <th scope="col">From → to</th>
              <th scope="col">Body</th>
            </tr>
          </thead>
          <tbody>
            {page.messages.map((m) => (
              <tr key={`${m.from}/${m.id}`}>
                <td>
                  <time dateTime={m.ts}>{new Date(m.ts).toLocaleString()}</time>
                </td>
                <td>{m.type}</td>
                <td>
                  {m.from}
                  {m.to ? ` → ${m.to}` : ''}
                </td>
                <td>
                  <code class="body">{JSON.stringify(m.body)?.slice(0, 160)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {page.messages.length === 0 && <p class="muted">No messages on this page.</p>}
      </div>
      <div class="actions">
        <button type="button" class="secondary" disabled={page.cursors.length <= 1} onClick={() => load(page.cursors.at(-2), page.cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" class="secondary" disabled={!page.next} onClick={() => load(page.next!, [...page.cursors, page.next!])}>
          Next page
        </button>
      </div>
    </Section>
  );
}
