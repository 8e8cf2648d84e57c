import { PRINCIPAL_ID_PATTERN, TYPE_PATTERN } from '../../core/message.js';

/** The topic scheme of docs/api.md, one row per form a client may publish to. */
export type PublishTopic =
  /** `devices/{id}/messages`: payload is an envelope or an array of envelopes. */
  | { kind: 'envelopes'; principal: string }
  /** `devices/{id}/messages/{type}`: payload is the body. */
  | { kind: 'typed'; principal: string; type: string }
  /** `devices/{target}/commands/{type}`: payload is the body of a command to `target`. */
  | { kind: 'command'; principal: string; type: string };

export function messagesTopic(principal: string, type: string): string {
  return `devices/${principal}/messages/${type}`;
}

export function commandsTopic(principal: string, type: string): string {
  return `devices/${principal}/commands/${type}`;
}

/** Parses a PUBLISH topic; null when it is not one a client may publish to. */
export function parsePublishTopic(topic: string): PublishTopic | null {
  const levels = topic.split('/');
  if (levels[0] !== 'devices' || levels.length < 3 || levels.length > 4) return null;
  const principal = levels[1]!;
  if (!PRINCIPAL_ID_PATTERN.test(principal)) return null;
  const type = levels[3];
  if (type !== undefined && !TYPE_PATTERN.test(type)) return null;
  if (levels[2] === 'messages') return type === undefined ? { kind: 'envelopes', principal } : { kind: 'typed', principal, type };
  if (levels[2] === 'commands' && type !== undefined) return { kind: 'command', principal, type };
  return null;
}

/** What a subscription filter asks for: whose messages or commands, and which of the two. */
export interface SubscriptionScope {
  /** A principal id, or null when the filter has a wildcard there. */
  principal: string | null;
  messages: boolean;
  commands: boolean;
}

/** Parses a SUBSCRIBE filter under `devices/`; null when it reaches outside the scheme. */
export function parseSubscription(filter: string): SubscriptionScope | null {
  const levels = filter.split('/');
  if (levels[0] !== 'devices' || levels.length < 2) return null;
  const id = levels[1]!;
  const wildcardId = id === '+' || id === '#';
  if (!wildcardId && !PRINCIPAL_ID_PATTERN.test(id)) return null;
  const principal = wildcardId ? null : id;
  const kind = id === '#' ? '#' : levels[2];
  if (kind === undefined) return null; // `devices/{id}` alone matches no topic we publish
  if (kind === 'messages') return { principal, messages: true, commands: false };
  if (kind === 'commands') return { principal, messages: false, commands: true };
  if (kind === '+' || kind === '#') return { principal, messages: true, commands: true };
  return null;
}

/** Splits a topic we publish (`devices/{id}/{messages|commands}/{type}`) without allocating an array. */
export function topicOwner(topic: string): { principal: string; commands: boolean } | null {
  if (!topic.startsWith('devices/')) return null;
  const end = topic.indexOf('/', 8);
  if (end < 0) return null;
  const principal = topic.slice(8, end);
  if (topic.startsWith('messages/', end + 1)) return { principal, commands: false };
  if (topic.startsWith('commands/', end + 1)) return { principal, commands: true };
  return null;
}

/** Whether a subscription filter matches a topic name, with `+` and `#` as MQTT 3.1.1 §4.7 says. */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
