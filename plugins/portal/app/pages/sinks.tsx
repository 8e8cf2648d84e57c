import { useState } from 'preact/hooks';
import type { Session } from '../api.ts';
import { ago, errorText, Section, Status, usePoll } from '../ui.tsx';

interface Replay {
  id: number;
  since?: string;
  until?: string;
  state: string;
  sent: number;
  error?: string;
}

interface Sink {
  name: string;
  position: string | null;
  delivered: number;
  deadLettered: number;
  retrying: boolean;
  lastError: string | null;
  replays: Replay[];
  lag: { count: number; oldestTs: string | null } | null;
}

interface DeadLetter {
  at: string;
  reason: string;
  message: { id: string; type: string; from: string };
}

/** The sinks fed from the store: how far behind, what was delivered and refused, and replays of a time range. */
export function SinksPage({ session }: { session: Session }) {
  const [sinks, setSinks] = useState<Sink[] | null>(null);
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  usePoll(
    async () => {
      try {
        setSinks((await session.call<{ sinks: Sink[] }>('GET', '/sinks')).sinks);
      } catch (err) {
        setStatus({ text: errorText(err), error: true });
      }
    },
    2000,
    [],
  );
  return (
    <>
      <h1>Sinks</h1>
      {status.text && <Status {...status} />}
      {sinks?.length === 0 && <p class="muted">No sinks are fed from the store on this server.</p>}
      {sinks?.map((s) => (
        <SinkCard key={s.name} session={session} sink={s} onStatus={setStatus} />
      ))}
    </>
  );
}

function SinkCard({ session, sink, onStatus }: { session: Session; sink: Sink; onStatus: (s: { text: string; error?: boolean }) => void }) {
  const [dead, setDead] = useState<DeadLetter[] | null>(null);
  const state = sink.retrying ? 'retrying' : 'delivering';
  return (
    <Section title={`Sink ${sink.name}`} id={`sink-${sink.name}`}>
      <dl class="stats" data-sink={sink.name}>
        <div>
          <dt>Status</dt>
          <dd class={sink.retrying ? 'bad' : 'good'}>{state}</dd>
        </div>
        <div>
          <dt>Lag</dt>
          <dd>{sink.lag ? `${sink.lag.count} messages${sink.lag.oldestTs ? `, oldest ${ago(sink.lag.oldestTs)}` : ''}` : 'unknown'}</dd>
        </div>
        <div>
          <dt>Delivered</dt>
          <dd data-testid="delivered">{sink.delivered}</dd>
        </div>
        <div>
          <dt>Dead letters</dt>
          <dd>{sink.deadLettered}</dd>
        </div>
      </dl>
      {sink.lastError && <p class="error">Last error: {sink.lastError}</p>}
      <h3>Replay a time range</h3>
      <form
        class="filters"
        onSubmit={async (e) => {
          e.preventDefault();
          const d = new FormData(e.currentTarget);
          const iso = (k: string) => (String(d.get(k)) ? new Date(String(d.get(k))).toISOString() : undefined);
          const since = iso('since');
          const until = iso('until');
          try {
            const res = await session.call<{ replay: Replay }>('POST', `/sinks/${encodeURIComponent(sink.name)}/replay`, { ...(since ? { since } : {}), ...(until ? { until } : {}) });
            onStatus({ text: `Replay ${res.replay.id} of ${sink.name} started.` });
          } catch (err) {
            onStatus({ text: errorText(err), error: true });
          }
        }}
      >
        <div class="field">
          <label for={`replay-since-${sink.name}`}>Since (empty: the oldest)</label>
          <input id={`replay-since-${sink.name}`} name="since" type="datetime-local" step="1" />
        </div>
        <div class="field">
          <label for={`replay-until-${sink.name}`}>Until (empty: now)</label>
          <input id={`replay-until-${sink.name}`} name="until" type="datetime-local" step="1" />
        </div>
        <button type="submit">Replay</button>
      </form>
      {sink.replays.length > 0 && (
        <div class="scroll">
          <table>
            <caption class="sr-only">Replays of {sink.name}</caption>
            <thead>
              <tr>
                <th scope="col">Replay</th>
                <th scope="col">Range</th>
                <th scope="col">State</th>
                <th scope="col">Sent</th>
              </tr>
            </thead>
            <tbody>
              {sink.replays.map((r) => (
                <tr key={r.id} data-replay={r.id} data-state={r.state}>
                  <td>{r.id}</td>
                  <td>
                    {r.since ? new Date(r.since).toLocaleString() : 'the oldest'} – {r.until ? new Date(r.until).toLocaleString() : 'now'}
                  </td>
                  <td>
                    {r.state}
                    {r.error ? `: ${r.error}` : ''}
                  </td>
                  <td>{r.sent}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <button
        type="button"
        class="secondary"
        onClick={async () => {
          try {
            setDead((await session.call<{ deadLetters: DeadLetter[] }>('GET', `/sinks/${encodeURIComponent(sink.name)}/dead-letters?limit=50`)).deadLetters);
          } catch (err) {
            onStatus({ text: errorText(err), error: true });
          }
        }}
      >
        Show dead letters
      </button>
      {dead &&
        (dead.length === 0 ? (
          <p class="muted">No dead letters.</p>
        ) : (
          <ul class="dead">
            {dead.map((d) => (
              <li key={`${d.at}/${d.message.id}`}>
                <time dateTime={d.at}>{new Date(d.at).toLocaleString()}</time> {d.message.type} from {d.message.from}: {d.reason}
              </li>
            ))}
          </ul>
        ))}
    </Section>
  );
}
