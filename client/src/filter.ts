import { badOption } from './errors.js';
import type { Message } from './envelope.js';

/** Which messages a subscription receives: the filters of `GET /messages` (docs/api.md). */
export interface MessageFilter {
  /** Senders: any of them. */
  from?: string | string[];
  /** Recipients: any of them. */
  to?: string | string[];
  /** Types: any of them. */
  type?: string | string[];
  /** Tags: the message must hold every one. */
  tag?: string | string[];
  /** `ts` at or after this time. */
  since?: string | Date;
  /** `ts` before this time. */
  until?: string | Date;
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

function list(value: string | string[] | undefined, option: string, pattern: RegExp | null): string[] {
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  for (const v of values) {
    if (typeof v !== 'string' || (pattern ? !pattern.test(v) : v.length === 0 || v.includes(','))) throw badOption(`filter.${option}`, `invalid value ${JSON.stringify(v)}`);
  }
  return values;
}

function instant(value: string | Date | undefined, option: string): number | null {
  if (value === undefined) return null;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) throw badOption(`filter.${option}`, 'an ISO-8601 time or a Date');
  return ms;
}

/**
 * A filter in the three forms the client needs: the query string of `GET /messages` and of the
 * SSE stream (where the server applies it), MQTT topic filters (which can say sender or
 * recipient and type, but not tags or times), and a local test for what topics cannot say.
 */
export class CompiledFilter {
  readonly from: string[];
  readonly to: string[];
  readonly type: string[];
  readonly tag: string[];
  private readonly since: number | null;
  private readonly until: number | null;
  private readonly sets: { from: Set<string>; to: Set<string>; type: Set<string> };

  constructor(private readonly filter: MessageFilter = {}) {
    this.from = list(filter.from, 'from', NAME);
    this.to = list(filter.to, 'to', NAME);
    this.type = list(filter.type, 'type', /^[A-Za-z0-9._-]{1,64}$/);
    this.tag = list(filter.tag, 'tag', null);
    this.since = instant(filter.since, 'since');
    this.until = instant(filter.until, 'until');
    this.sets = { from: new Set(this.from), to: new Set(this.to), type: new Set(this.type) };
  }

  /** `from=a&from=b&type=…`, repeated parameters as the server reads them. */
  query(): string {
    const params = new URLSearchParams();
    for (const key of ['from', 'to', 'type', 'tag'] as const) for (const v of this[key]) params.append(key, v);
    for (const key of ['since', 'until'] as const) {
      const v = this.filter[key];
      if (v !== undefined) params.append(key, v instanceof Date ? v.toISOString() : v);
    }
    return params.toString();
  }

  /**
   * MQTT topic filters (docs/api.md, "Subscribing"): with `to`, the recipients' commands topics,
   * else the senders' messages topics (`+` for any sender). A message addressed to someone is
   * published on both, so one side only: each message arrives once.
   */
  topics(): string[] {
    const types = this.type.length > 0 ? this.type : ['#'];
    const [ids, kind] = this.to.length > 0 ? [this.to, 'commands'] : [this.from.length > 0 ? this.from : ['+'], 'messages'];
    return ids.flatMap((id) => types.map((type) => `devices/${id}/${kind}/${type}`));
  }

  matches(m: Message): boolean {
    const { from, to, type } = this.sets;
    if (from.size > 0 && !from.has(m.from)) return false;
    if (to.size > 0 && (m.to === undefined || !to.has(m.to))) return false;
    if (type.size > 0 && !type.has(m.type)) return false;
    for (const t of this.tag) if (!m.tags?.includes(t)) return false;
    if (this.since !== null || this.until !== null) {
      const ts = Date.parse(m.ts);
      if (this.since !== null && ts < this.since) return false;
      if (this.until !== null && ts >= this.until) return false;
    }
    return true;
  }
}
