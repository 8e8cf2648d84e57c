// Where to connect: host, port, TLS and credentials, parsed from an AMQP URL.
export interface Endpoint {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
}

export function parseUrl(url: string): Endpoint {
  const u = new URL(url);
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') throw new TypeError(`not an AMQP URL: ${url}`);
  const secure = u.protocol === 'amqps:';
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : secure ? 5671 : 5672,
    tls: secure,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
  };
}
