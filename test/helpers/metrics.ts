import type { TestServer } from './server.js';

/** The value of one Prometheus sample in `GET /metrics`, 0 when absent. */
export async function metric(t: TestServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await t.api('GET', '/metrics', { token: null });
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of (res.body as string).split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    const bare = series === name;
    const labelled = series!.startsWith(`${name}{`) && want.every((l) => series!.includes(l));
    if ((bare && want.length === 0) || labelled) return Number(value);
  }
  return 0;
}

/**
 * Resolves once the sample satisfies `ok`: a test waits for the state it asserts. The test's
 * own timeout bounds the wait; the last value seen is in the error if it never comes.
 */
export async function waitForMetric(t: TestServer, name: string, ok: (value: number) => boolean, labels: Record<string, string> = {}, ms = 15_000): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await metric(t, name, labels);
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`${name}${JSON.stringify(labels)} is still ${value}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
