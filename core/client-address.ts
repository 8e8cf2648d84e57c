import { BlockList, isIP, isIPv4 } from 'node:net';

/** Where a credential came from, as far as the server can tell. */
export interface ClientAddress {
  /** The key the per-address limit counts under: an IPv4 address, or an IPv6 /64 prefix. */
  key: string;
  /**
   * True when the connection comes from a trusted proxy that did not say for whom: every client
   * behind it shares this address, so the per-address limit does not apply (the per-principal one does).
   */
  sharedProxy: boolean;
}

/** `10.0.0.5` or `10.0.0.0/8`, `2001:db8::1` or `2001:db8::/32`. */
export function isAddressOrSubnet(value: string): boolean {
  const [address, prefix, extra] = value.split('/');
  if (extra !== undefined || !address || isIP(address) === 0) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && bits <= (isIPv4(address) ? 32 : 128);
}

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is 1.2.3.4; zone ids are dropped. */
function plain(address: string): string {
  const unzoned = address.split('%')[0]!;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unzoned);
  return mapped ? mapped[1]! : unzoned.toLowerCase();
}

/**
 * The per-address key: IPv4 addresses as they are; IPv6 addresses by their /64, since one
 * subscriber usually holds a whole /64 and could otherwise take a fresh address per attempt.
 */
export function addressKey(address: string): string {
  const ip = plain(address);
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail] = ip.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::1.2.3.4) sits in the low 64 bits: it never reaches the prefix.
  const groups = [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups];
  return (
    groups
      .slice(0, 4)
      .map((g) => g.replace(/^0+(?=.)/, ''))
      .join(':') + '::/64'
  );
}

/**
 * Tells clients apart behind configured proxies (a front door such as nginx). A connection's
 * own address is the client unless it is a trusted proxy; then `X-Forwarded-For` is read from
 * the right, skipping trusted proxies, and the first address not trusted is the client. A header
 * from anyone else is ignored: a client cannot choose the address it is counted under.
 */
export class ClientAddresses {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const type = isIPv4(address) ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.trusted.addAddress(address, type);
      else this.trusted.addSubnet(address, Number(prefix), type);
    }
    this.any = trustedProxies.length > 0;
  }

  private isTrusted(address: string): boolean {
    if (!this.any) return false;
    const ip = plain(address);
    const type = isIP(ip);
    return type !== 0 && this.trusted.check(ip, type === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client behind a connection from `remoteAddress`, given its `X-Forwarded-For` (REST) if any. */
  resolve(remoteAddress: string | undefined, forwardedFor?: string): ClientAddress {
    const remote = remoteAddress ?? 'unknown';
    if (!this.isTrusted(remote)) return { key: addressKey(remote), sharedProxy: false };
    const hops = (forwardedFor ?? '')
      .split(',')
      .map((hop) => hop.trim())
      .filter((hop) => hop !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(plain(hop)) === 0) break; // a malformed hop: nothing left of it can be trusted
      if (!this.isTrusted(hop)) return { key: addressKey(hop), sharedProxy: false };
    }
    return { key: addressKey(remote), sharedProxy: true };
  }
}
