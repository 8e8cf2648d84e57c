import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { query, type Principal, type Session } from '../api.ts';
import { ago, errorText, OnlineBadge, SecretsDialog, Section, Status, useNow, usePoll, type Credential } from '../ui.tsx';

/** Rows per request: one request with presence per page (GET /principals?with=presence). */
const PAGE = 500;
/** A row's height in px: the list draws only the rows in view, whatever the fleet's size. */
const ROW = 44;
const OVERSCAN = 8;

interface Page {
  cursor: string | undefined;
  items: Principal[];
  next: string | null;
}

/**
 * The devices the principal may view, ordered by id, fetched a page at a time as the list is
 * scrolled (server paging), drawn as a virtualized list (only the rows in view exist in the
 * DOM), the pages in view fetched again every few seconds (live online state and last seen).
 */
export function DevicesPage({ session, systemAdmin }: { session: Session; systemAdmin: boolean }) {
  const [pages, setPages] = useState<Page[]>([]);
  const [loading, setLoading] = useState(false);
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  const [secrets, setSecrets] = useState<Credential[] | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(480);
  const list = useRef<HTMLDivElement>(null);
  const generation = useRef(0);
  const now = useNow(5000);

  async function fetchPage(cursor: string | undefined): Promise<Page> {
    const body = await session.call<{ principals: Principal[]; next: string | null }>('GET', `/principals${query({ type: 'device', with: 'presence', limit: PAGE, cursor })}`);
    return { cursor, items: body.principals, next: body.next };
  }

  async function reload() {
    const gen = ++generation.current;
    setLoading(true);
    try {
      const first = await fetchPage(undefined);
      if (gen === generation.current) setPages([first]);
    } catch (err) {
      setStatus({ text: errorText(err), error: true });
    } finally {
      setLoading(false);
    }
  }

  async function loadMore() {
    const last = pages.at(-1);
    if (loading || !last?.next) return;
    const gen = generation.current;
    setLoading(true);
    try {
      const page = await fetchPage(last.next);
      if (gen === generation.current) setPages((ps) => (ps.at(-1) === last ? [...ps, page] : ps));
    } catch (err) {
      setStatus({ text: errorText(err), error: true });
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => void reload(), []);

  useEffect(() => {
    const el = list.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const needle = search.trim().toLowerCase();
  const rows = useMemo(() => {
    const all = pages.flatMap((p, page) => p.items.map((principal) => ({ principal, page })));
    if (!needle) return all;
    return all.filter(({ principal: p }) => p.id.toLowerCase().includes(needle) || (p.name ?? '').toLowerCase().includes(needle) || p.tags.some((t) => t.toLowerCase().includes(needle)));
  }, [pages, needle]);
  const more = pages.at(-1)?.next != null;

  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);

  // More rows when the view nears the end of what is loaded; a search reads every page, since the
  // server filters by type and tag only.
  useEffect(() => {
    if (more && !loading && (needle || last >= rows.length - OVERSCAN * 2)) void loadMore();
  }, [more, loading, needle, last, rows.length]);

  // Live: every few seconds, the pages holding the rows in view are asked again. The view is read
  // from a ref, so scrolling does not restart the timer or send requests of its own.
  const view = useRef({ rows, pages, first, last });
  view.current = { rows, pages, first, last };
  usePoll(
    async () => {
      const { rows, pages, first, last } = view.current;
      const inView = new Set(rows.slice(first, last).map((r) => r.page));
      // At the top, or with nothing to show: the first page, where new devices of a small fleet land.
      if (first === 0 || inView.size === 0) inView.add(0);
      for (const index of inView) {
        const page = pages[index];
        if (!page) continue;
        const fresh = await fetchPage(page.cursor);
        setPages((ps) => (ps[index]?.cursor === page.cursor ? ps.map((p, i) => (i === index ? { ...fresh, next: p.next } : p)) : ps));
      }
    },
    3000,
    [],
  );

  const online = pages.reduce((n, p) => n + p.items.filter((d) => d.presence?.connected).length, 0);
  const loaded = pages.reduce((n, p) => n + p.items.length, 0);

  return (
    <>
      <h1>Devices</h1>
      <div class="toolbar">
        <div class="field grow">
          <label for="device-search">Search id, name or tag</label>
          <input id="device-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="car-12" />
        </div>
        <p class="counts" aria-live="polite" data-testid="device-counts">
          {loaded} loaded{more ? ' (more on scroll)' : ''} · <span data-testid="online-count">{online}</span> online
          {needle ? ` · ${rows.length} match` : ''}
        </p>
      </div>
      <div class="vlist" role="table" aria-label="Devices" aria-rowcount={rows.length + 1}>
        <div class="vrow head" role="row" aria-rowindex={1}>
          <span role="columnheader">Device</span>
          <span role="columnheader">State</span>
          <span role="columnheader">Last seen</span>
          <span role="columnheader" class="wide">
            Tags
          </span>
        </div>
        <div class="vbody" ref={list} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} tabIndex={0} aria-label="Device rows, scroll for more">
          <div style={{ height: `${rows.length * ROW}px`, position: 'relative' }}>
            {rows.slice(first, last).map(({ principal: d }, i) => (
              <div class="vrow" role="row" aria-rowindex={first + i + 2} key={d.id} style={{ top: `${(first + i) * ROW}px` }} data-device={d.id} data-online={d.presence?.connected ? 'true' : 'false'}>
                <span role="cell" class="id">
                  <a href={`#/devices/${encodeURIComponent(d.id)}`}>{d.id}</a>
                  {d.name && <span class="muted"> {d.name}</span>}
                  {!d.enabled && <span class="badge disabled">disabled</span>}
                </span>
                <span role="cell">
                  <OnlineBadge connected={d.presence?.connected} />
                </span>
                <span role="cell" title={d.lastSeenAt}>
                  {d.presence?.connected ? `since ${ago(d.presence.since, now)}` : ago(d.presence?.since ?? d.lastSeenAt, now)}
                </span>
                <span role="cell" class="wide tags">
                  {d.tags.join(', ')}
                </span>
              </div>
            ))}
          </div>
          {!loading && rows.length === 0 && <p class="empty">{needle ? 'No device matches.' : 'No devices you may view.'}</p>}
        </div>
      </div>
      {status.text && <Status {...status} />}
      <div class="grid2">
        {systemAdmin && <RegisterForm session={session} onRegistered={(c) => (setSecrets(c), void reload())} onStatus={setStatus} />}
        <ClaimForm session={session} onClaimed={() => void reload()} onStatus={setStatus} />
      </div>
      {secrets && <SecretsDialog title={`Registered ${secrets.length} device${secrets.length === 1 ? '' : 's'}`} credentials={secrets} onClose={() => setSecrets(null)} />}
    </>
  );
}

function tagsOf(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

function RegisterForm({ session, onRegistered, onStatus }: { session: Session; onRegistered: (c: Credential[]) => void; onStatus: (s: { text: string; error?: boolean }) => void }) {
  const [busy, setBusy] = useState(false);
  return (
    <Section title="Register devices" id="register">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const data = new FormData(form);
          const count = Number(data.get('count'));
          const id = String(data.get('id')).trim();
          const name = String(data.get('name')).trim();
          const tags = tagsOf(String(data.get('tags')));
          const entries = Array.from({ length: count }, (_, i) => ({
            type: 'device' as const,
            ...(id ? { id: count === 1 ? id : `${id}-${i}` } : {}),
            ...(name ? { name: count === 1 ? name : `${name} ${i}` } : {}),
            tags,
          }));
          setBusy(true);
          try {
            const res = await session.call<{ principals: Array<{ principal: Principal; secret: string }> }>('POST', '/principals', entries);
            onStatus({ text: `Registered ${res.principals.length} device(s).` });
            form.reset();
            onRegistered(res.principals.map((p) => ({ id: p.principal.id, secret: p.secret })));
          } catch (err) {
            onStatus({ text: errorText(err), error: true });
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="reg-count">How many</label>
          <input id="reg-count" name="count" type="number" min="1" max="1000" value="1" required />
        </div>
        <div class="field">
          <label for="reg-id">Id (with several: the prefix of id-0, id-1, …; empty: assigned)</label>
          <input id="reg-id" name="id" pattern="[A-Za-z0-9._\-]{1,120}" />
        </div>
        <div class="field">
          <label for="reg-name">Name (optional)</label>
          <input id="reg-name" name="name" maxLength={200} />
        </div>
        <div class="field">
          <label for="reg-tags">Tags, comma-separated (optional)</label>
          <input id="reg-tags" name="tags" />
        </div>
        <button type="submit" disabled={busy}>
          Register
        </button>
      </form>
    </Section>
  );
}

function ClaimForm({ session, onClaimed, onStatus }: { session: Session; onClaimed: () => void; onStatus: (s: { text: string; error?: boolean }) => void }) {
  return (
    <Section title="Claim a device" id="claim">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.currentTarget;
          const code = String(new FormData(form).get('code')).trim();
          try {
            const res = await session.call<{ principal: Principal }>('POST', '/claims', { code });
            onStatus({ text: `Claimed ${res.principal.id}: you may now administer it.` });
            form.reset();
            onClaimed();
          } catch (err) {
            onStatus({ text: errorText(err), error: true });
          }
        }}
      >
        <div class="field">
          <label for="claim-code">Claim code from the device's label</label>
          <input id="claim-code" name="code" placeholder="7KQ2M-XW4PB" autocomplete="off" required />
        </div>
        <button type="submit">Claim</button>
      </form>
    </Section>
  );
}
