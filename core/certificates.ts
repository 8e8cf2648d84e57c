import { createHash, X509Certificate } from 'node:crypto';
import { requireAllowed } from './access.js';
import type { Authenticator, Origin } from './authenticator.js';
import { NitrogenError } from './errors.js';
import type { Authentication, Identity } from './ports/identity.js';
import { publicPrincipal, type Principal } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';

const CERTIFICATES = 'certificates';
const AUTHORITIES = 'certificate-authorities';
/** How long the list of authorities is trusted before it is read again (changes by other instances). */
const AUTHORITIES_REFRESH_MS = 5000;

/** A certificate as the API shows it; never a private key (none is ever sent). */
export interface CertificateInfo {
  /** SHA-256 of the DER encoding, 64 lowercase hex digits. */
  fingerprint: string;
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  addedAt: string;
  /** Set once revoked: the certificate authenticates no one from then on. */
  revokedAt?: string;
}

interface StoredAuthority extends CertificateInfo {
  pem: string;
}

function fingerprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

function parse(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'certificate: not a PEM or DER X.509 certificate', { cause: err, details: { field: 'certificate' } });
  }
}

function infoOf(cert: X509Certificate, addedAt: string): CertificateInfo {
  return {
    fingerprint: fingerprintOf(cert.raw),
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    addedAt,
  };
}

/** The subject's common name: the principal a certificate from a registered authority stands for. */
function commonName(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

function refused(message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_CERTIFICATE_REFUSED', message);
}

/**
 * X.509 client certificates as a device credential (MQTT over TLS). A certificate authenticates
 * its principal when:
 * - it is registered with that principal (by its SHA-256 fingerprint: `add`), or
 * - it was issued and signed by a registered certificate authority (`addAuthority`) and its
 *   subject CN is the id of a device;
 * and it is within its validity period and not revoked. Rotation: register (or issue) the new
 * certificate, move the device to it, revoke the old one. Revoking ends the device's open sessions.
 * The session a certificate opens ends when the certificate expires.
 *
 * Throws NITROGEN_ERR_FORBIDDEN, NITROGEN_ERR_NOT_FOUND, NITROGEN_ERR_VALIDATION and, from
 * `authenticate`, NITROGEN_ERR_CERTIFICATE_REFUSED (counted against the address) and
 * NITROGEN_ERR_PRINCIPAL_DISABLED.
 */
export class Certificates {
  private authorities?: { certs: X509Certificate[]; at: number };

  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly authenticator: Authenticator,
    private readonly events: PrincipalEvents,
  ) {}

  /** Registers a device's own certificate; `admin` on the device. */
  async add(actor: Principal, device: string, pem: string): Promise<CertificateInfo> {
    requireAllowed(this.identity, actor, 'admin', device);
    // Matched by its fingerprint alone, so any certificate will do, a self-signed one (CA:TRUE, as
    // openssl makes them by default) included.
    const cert = parse(pem);
    const principal = await this.registry.getPrincipal(device);
    if (!principal) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${device}'`);
    const info = infoOf(cert, new Date().toISOString());
    const existing = await this.registry.getRecord(CERTIFICATES, info.fingerprint);
    if (existing && existing.principal !== device) throw new NitrogenError('NITROGEN_ERR_CONFLICT', 'the certificate is registered with another principal');
    if ((existing?.value as CertificateInfo | undefined)?.revokedAt) throw new NitrogenError('NITROGEN_ERR_CONFLICT', 'the certificate was revoked; issue a new one');
    await this.registry.putRecords([{ kind: CERTIFICATES, key: info.fingerprint, principal: device, value: info }]);
    return info;
  }

  /** A device's registered and revoked certificates; `view` on it. */
  async list(actor: Principal, device: string): Promise<CertificateInfo[]> {
    requireAllowed(this.identity, actor, 'view', device);
    const page = await this.registry.listRecords(CERTIFICATES, { principal: device }, { limit: 1000 });
    return page.items.map((r) => r.value as CertificateInfo);
  }

  /**
   * Revokes a certificate of `device` (registered with it, or issued to it by an authority, named
   * by its fingerprint): it authenticates no one from then on, and the device's sessions end.
   */
  async revoke(actor: Principal, device: string, fingerprint: string): Promise<CertificateInfo> {
    requireAllowed(this.identity, actor, 'admin', device);
    const existing = await this.registry.getRecord(CERTIFICATES, fingerprint);
    if (existing && existing.principal !== device) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no certificate '${fingerprint}' of '${device}'`);
    if (!(await this.registry.getPrincipal(device))) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${device}'`);
    const now = new Date().toISOString();
    const info: CertificateInfo = existing ? { ...(existing.value as CertificateInfo) } : { fingerprint, subject: '', issuer: '', notBefore: now, notAfter: now, addedAt: now };
    info.revokedAt ??= now;
    await this.registry.putRecords([{ kind: CERTIFICATES, key: fingerprint, principal: device, value: info }]);
    this.events.revoke(device, 'certificate revoked');
    return info;
  }

  /** Registers a certificate authority whose certificates authenticate the device their CN names; `admin` on the system. */
  async addAuthority(actor: Principal, pem: string): Promise<CertificateInfo> {
    requireAllowed(this.identity, actor, 'admin', null);
    const cert = parse(pem);
    if (!cert.ca) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'certificate: not a CA certificate (basicConstraints CA:TRUE)', { details: { field: 'certificate' } });
    const info = infoOf(cert, new Date().toISOString());
    const stored: StoredAuthority = { ...info, pem: cert.toString() };
    await this.registry.putRecords([{ kind: AUTHORITIES, key: info.fingerprint, principal: actor.id, value: stored }]);
    this.authorities = undefined;
    return info;
  }

  async listAuthorities(actor: Principal): Promise<CertificateInfo[]> {
    requireAllowed(this.identity, actor, 'admin', null);
    return (await this.loadAuthorities()).map(({ pem: _pem, ...info }) => info);
  }

  /** Removes an authority: certificates it issued authenticate no one from then on (open sessions go on until they end). */
  async removeAuthority(actor: Principal, fingerprint: string): Promise<void> {
    requireAllowed(this.identity, actor, 'admin', null);
    if (!(await this.registry.deleteRecord(AUTHORITIES, fingerprint))) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no certificate authority '${fingerprint}'`);
    this.authorities = undefined;
  }

  /** Who a client certificate (DER, as the TLS handshake received it) stands for; limited per address on failure. */
  async authenticate(der: Buffer, origin: Origin): Promise<Authentication> {
    const fingerprint = fingerprintOf(der);
    return this.authenticator.limited('certificate', fingerprint, origin, () => this.check(der, fingerprint), { failures: ['NITROGEN_ERR_CERTIFICATE_REFUSED'] });
  }

  private async check(der: Buffer, fingerprint: string): Promise<Authentication> {
    const record = await this.registry.getRecord(CERTIFICATES, fingerprint);
    if ((record?.value as CertificateInfo | undefined)?.revokedAt) throw refused('the certificate was revoked');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      throw refused('not an X.509 certificate');
    }
    const now = Date.now();
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) throw refused('the certificate is expired or not yet valid');
    let id = record?.principal;
    if (id === undefined) {
      const authority = (await this.trustedAuthorities()).find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey) && now <= Date.parse(ca.validTo));
      if (!authority) throw refused('the certificate is not registered and no registered authority issued it');
      id = commonName(cert);
      if (id === undefined) throw refused('the certificate names no principal (subject CN)');
    }
    const principal = await this.registry.getPrincipal(id);
    // An authority vouches for devices only: it cannot mint an application's or a person's identity.
    if (!principal || (record === null && principal.type !== 'device')) throw refused(`the certificate's principal '${id}' is not a device here`);
    if (!principal.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${id}' is disabled`);
    return { principal: publicPrincipal(principal), expiresAt: Date.parse(cert.validTo) };
  }

  private async loadAuthorities(): Promise<StoredAuthority[]> {
    const page = await this.registry.listRecords(AUTHORITIES, {}, { limit: 1000 });
    return page.items.map((r) => r.value as StoredAuthority);
  }

  private async trustedAuthorities(): Promise<X509Certificate[]> {
    if (!this.authorities || Date.now() - this.authorities.at > AUTHORITIES_REFRESH_MS) {
      this.authorities = { certs: (await this.loadAuthorities()).map((a) => new X509Certificate(a.pem)), at: Date.now() };
    }
    return this.authorities.certs;
  }
}
