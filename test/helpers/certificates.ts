import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its key, as files and as PEM text. */
export interface Issued {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Test certificates made with Debian's openssl in a test's temporary directory: nothing private
 * is committed. EC P-256 keys, which openssl makes in milliseconds.
 */
export class TestCa {
  readonly ca: Issued;

  constructor(
    private readonly dir: string,
    name = 'ca',
  ) {
    const keyFile = join(dir, `${name}.key`);
    const certFile = join(dir, `${name}.crt`);
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
        keyFile,
        '-out',
        certFile,
        '-days',
        '2',
        '-subj',
        `/CN=Nitrogen test ${name}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    this.ca = { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
  }

  /**
   * A certificate signed by this CA for `cn`: a server's (with `127.0.0.1` and `localhost` as
   * names) or a client's.
   */
  issue(cn: string, options: { server?: boolean } = {}): Issued {
    const base = join(this.dir, cn.replace(/[^A-Za-z0-9.-]/g, '_') + (options.server ? '-server' : '') + `-${Math.random().toString(36).slice(2, 8)}`);
    const [keyFile, csrFile, certFile, extFile] = [`${base}.key`, `${base}.csr`, `${base}.crt`, `${base}.ext`];
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${cn}`], this.dir);
    writeFileSync(extFile, options.server ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
    openssl(['x509', '-req', '-in', csrFile, '-CA', this.ca.certFile, '-CAkey', this.ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile], this.dir);
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
  }
}

/** A self-signed client certificate, issued by no registered authority. */
export function selfSigned(dir: string, cn: string): Issued {
  const keyFile = join(dir, `${cn}-self.key`);
  const certFile = join(dir, `${cn}-self.crt`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`], dir);
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
}
