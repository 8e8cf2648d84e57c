import { useState } from 'preact/hooks';
import type { Session } from '../api.ts';
import { errorText, Section, Status, usePoll } from '../ui.tsx';

interface Permission {
  id: string;
  issuedTo: string | null;
  principalFor: string | null;
  action: string | null;
  authorized: boolean;
  priority: number;
  expires?: string;
  createdAt: string;
}

const ACTIONS = ['view', 'subscribe', 'send', 'admin', 'impersonate'];

/** Who may do what to whom: the records the principal may see, in the order they are evaluated. */
export function PermissionsPage({ session }: { session: Session }) {
  const [records, setRecords] = useState<Permission[]>([]);
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });

  async function load() {
    try {
      setRecords((await session.call<{ permissions: Permission[] }>('GET', '/permissions')).permissions);
    } catch (err) {
      setStatus({ text: errorText(err), error: true });
    }
  }
  usePoll(load, 10_000, []);

  return (
    <>
      <h1>Permissions</h1>
      <p class="muted">Records are evaluated by priority (lowest first); the first that matches decides. Without one, the answer is no.</p>
      {status.text && <Status {...status} />}
      <Section title="Grant" id="grant">
        <form
          class="filters"
          onSubmit={async (e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const d = new FormData(form);
            const orNull = (k: string) => String(d.get(k)).trim() || null;
            const record = {
              issuedTo: orNull('issuedTo'),
              principalFor: orNull('principalFor'),
              action: orNull('action'),
              authorized: d.get('authorized') === 'allow',
              priority: Number(d.get('priority')),
            };
            try {
              const res = await session.call<{ permission: Permission }>('POST', '/permissions', record);
              setStatus({ text: `Recorded: ${describe(res.permission)}.` });
              await load();
            } catch (err) {
              setStatus({ text: errorText(err), error: true });
            }
          }}
        >
          <div class="field">
            <label for="perm-to">Issued to (empty: anyone)</label>
            <input id="perm-to" name="issuedTo" placeholder="alice" />
          </div>
          <div class="field">
            <label for="perm-action">May</label>
            <select id="perm-action" name="action">
              {ACTIONS.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
              <option value="">anything</option>
            </select>
          </div>
          <div class="field">
            <label for="perm-for">For (empty: everyone)</label>
            <input id="perm-for" name="principalFor" placeholder="car-1" />
          </div>
          <div class="field">
            <label for="perm-authorized">Decision</label>
            <select id="perm-authorized" name="authorized">
              <option value="allow">allow</option>
              <option value="deny">deny</option>
            </select>
          </div>
          <div class="field">
            <label for="perm-priority">Priority</label>
            <input id="perm-priority" name="priority" type="number" min="0" value="1000" />
          </div>
          <button type="submit">Grant</button>
        </form>
      </Section>
      <Section title="Records" id="records">
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Issued to</th>
                <th scope="col">Action</th>
                <th scope="col">For</th>
                <th scope="col">Decision</th>
                <th scope="col">Priority</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span class="sr-only">Revoke</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {records.map((r) => (
                <tr key={r.id} data-permission={r.id}>
                  <td>{r.issuedTo ?? <em>anyone</em>}</td>
                  <td>{r.action ?? <em>anything</em>}</td>
                  <td>{r.principalFor ?? <em>everyone</em>}</td>
                  <td>{r.authorized ? 'allow' : 'deny'}</td>
                  <td>{r.priority}</td>
                  <td>{r.expires ? new Date(r.expires).toLocaleString() : 'never'}</td>
                  <td>
                    <button
                      type="button"
                      class="danger small"
                      aria-label={`Revoke: ${describe(r)}`}
                      onClick={async () => {
                        try {
                          await session.call('DELETE', `/permissions/${encodeURIComponent(r.id)}`);
                          setStatus({ text: `Revoked: ${describe(r)}.` });
                          await load();
                        } catch (err) {
                          setStatus({ text: errorText(err), error: true });
                        }
                      }}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {records.length === 0 && <p class="muted">No records you may see.</p>}
        </div>
      </Section>
    </>
  );
}

function describe(r: Permission): string {
  return `${r.issuedTo ?? 'anyone'} ${r.authorized ? 'may' : 'may not'} ${r.action ?? 'do anything'} on ${r.principalFor ?? 'everyone'}`;
}
