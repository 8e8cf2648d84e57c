import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Session } from './api.ts';
import { DevicePage } from './pages/device.tsx';
import { DevicesPage } from './pages/devices.tsx';
import { LoginPage } from './pages/login.tsx';
import { PermissionsPage } from './pages/permissions.tsx';
import { SinksPage } from './pages/sinks.tsx';
import { SystemPage } from './pages/system.tsx';
import './style.css';

/** Routes live in the fragment (`#/devices/car-1`): the server serves one page at `/`, and no path of the app can meet an API path. */
function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onChange = () => setRoute(parse());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

const NAV: Array<[string, string]> = [
  ['devices', 'Devices'],
  ['permissions', 'Permissions'],
  ['sinks', 'Sinks'],
  ['system', 'System'],
];

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [ended, setEnded] = useState('');
  const [systemAdmin, setSystemAdmin] = useState(false);
  const route = useRoute();
  const page = route[0] ?? 'devices';

  useEffect(() => {
    setSystemAdmin(false);
    if (!session) return;
    // Asked beside the first page's requests, not before them.
    void session.isSystemAdmin().then(setSystemAdmin);
    // A token expires: the session ends with it, and the login form says why.
    const left = session.expiresAt - Date.now();
    const timer = setTimeout(() => logout('Your session expired. Please log in again.'), Math.min(Math.max(left, 0), 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [session]);

  useEffect(() => {
    const main = document.getElementById('main');
    main?.focus({ preventScroll: true });
  }, [page, route[1]]);

  function logout(reason = '') {
    setSession((s) => {
      void s?.close();
      return null;
    });
    setEnded(reason);
  }

  if (!session)
    return (
      <LoginPage
        notice={ended}
        onLogin={async (id, secret) => {
          const s = await Session.login(id, secret, (why) => logout(`Your session ended (${why}). Please log in again.`));
          setEnded('');
          setSession(s);
        }}
      />
    );

  let content;
  if (page === 'devices' && route[1]) content = <DevicePage key={route[1]} session={session} id={route[1]} />;
  else if (page === 'permissions') content = <PermissionsPage session={session} />;
  else if (page === 'sinks') content = <SinksPage session={session} />;
  else if (page === 'system') content = <SystemPage />;
  else content = <DevicesPage session={session} systemAdmin={systemAdmin} />;

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Nitrogen</span>
        <nav aria-label="Main">
          <ul>
            {NAV.filter(([key]) => key !== 'sinks' || systemAdmin).map(([key, label]) => (
              <li key={key}>
                <a href={`#/${key}`} aria-current={page === key ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          <span class="muted">{session.principal.type}</span> <strong data-testid="who">{session.principal.id}</strong>
          <button type="button" class="secondary small" onClick={() => logout()}>
            Log out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
