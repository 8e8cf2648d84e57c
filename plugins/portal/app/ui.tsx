import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';

/** Runs `task` now and every `ms` while mounted (and again when `deps` change); never two at once. */
export function usePoll(task: () => Promise<void>, ms: number, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        await task();
      } catch {
        // The task shows its own errors; polling goes on.
      }
      if (!stopped) timer = setTimeout(run, ms);
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.status === 403 ? `Not allowed: ${err.message}` : err.message;
  return (err as Error)?.message ?? String(err);
}

/** A polite live region: results of actions are read out by screen readers. */
export function Status({ text, error }: { text: string; error?: boolean }) {
  return (
    <p class={error ? 'status error' : 'status'} role={error ? 'alert' : 'status'} aria-live={error ? 'assertive' : 'polite'}>
      {text}
    </p>
  );
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function OnlineBadge({ connected }: { connected: boolean | undefined }) {
  // Text as well as colour: the state must not be told by colour alone (WCAG 1.4.1).
  return <span class={connected ? 'badge online' : 'badge offline'}>{connected ? 'online' : 'offline'}</span>;
}

/** Saves `data` as a file, made in the page: secrets never travel again. */
function download(filename: string, data: unknown): void {
  const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2) + '\n'], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export interface Credential {
  id: string;
  secret: string;
}

/** Secrets, shown once, with a download; closing forgets them. A native modal dialog: focus stays inside, Escape closes. */
export function SecretsDialog({ title, credentials, onClose }: { title: string; credentials: Credential[]; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const rest = typeof location === 'undefined' ? '' : `${location.origin}/api/v1`;
  return (
    <dialog ref={ref} class="secrets" aria-labelledby="secrets-title" onClose={onClose}>
      <h2 id="secrets-title">{title}</h2>
      <p>These secrets are shown only now. Download or copy them before closing.</p>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">id</th>
              <th scope="col">secret</th>
            </tr>
          </thead>
          <tbody>
            {credentials.slice(0, 200).map((c) => (
              <tr key={c.id}>
                <td>{c.id}</td>
                <td>
                  <code class="secret">{c.secret}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {credentials.length > 200 && <p>… and {credentials.length - 200} more in the download.</p>}
      </div>
      <div class="actions">
        <button type="button" onClick={() => download(`nitrogen-credentials-${Date.now()}.json`, { rest, credentials })}>
          Download credentials
        </button>
        <button type="button" class="secondary" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/\W+/g, '-')}-h`;
  return (
    <section class="card" aria-labelledby={headingId}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </section>
  );
}

export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
