import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchTls } from './targets.js';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA, a server certificate for 127.0.0.1 and, on demand, client certificates it signs: made with
 * Debian's openssl in the run's temporary directory (EC P-256, as a fleet would use).
 */
export class BenchCa {
  readonly tls: BenchTls;
  readonly caCert: string;

  constructor(private readonly dir: string) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.crt',
        '-days',
        '2',
        '-subj',
        '/CN=bench ca',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      ],
      dir,
    );
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
    this.caCert = readFileSync(join(dir, 'ca.crt'), 'utf8');
    this.tls = { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), ca: this.caCert };
  }

  /** Client certificates for `ids` (their CN), all on one key: the server checks the certificate, and one key keeps making 1,000 quick. */
  clients(ids: readonly string[]): { key: string; certs: string[] } {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'client.key'], this.dir);
    const certs = ids.map((id) => {
      openssl(['req', '-new', '-key', 'client.key', '-out', 'client.csr', '-subj', `/CN=${id}`], this.dir);
      openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2'], this.dir);
      return readFileSync(join(this.dir, 'client.crt'), 'utf8');
    });
    return { key: readFileSync(join(this.dir, 'client.key'), 'utf8'), certs };
  }
}
