import { useState } from 'preact/hooks';
import { errorText, Status } from '../ui.tsx';

export function LoginPage({ onLogin, notice }: { onLogin: (id: string, secret: string) => Promise<void>; notice: string }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="login" id="main" tabIndex={-1}>
      <h1>Nitrogen</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const data = new FormData(e.currentTarget);
          setBusy(true);
          setError('');
          try {
            await onLogin(String(data.get('id')), String(data.get('secret')));
          } catch (err) {
            setError(errorText(err));
            setBusy(false);
          }
        }}
      >
        <h2>Log in</h2>
        {notice && <Status text={notice} />}
        <label for="login-id">Principal id</label>
        <input id="login-id" name="id" autocomplete="username" required autoFocus />
        <label for="login-secret">Password or secret</label>
        <input id="login-secret" name="secret" type="password" autocomplete="current-password" required />
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        {error && <Status text={error} error />}
        <p class="muted small">The session lasts while this tab is open: reloading the page logs out.</p>
      </form>
    </main>
  );
}
