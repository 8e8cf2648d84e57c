import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { ClientError } from '../errors.js';
import { register, type RegisterOptions, type Registration } from '../register.js';

/**
 * A device's first start registers it with the API key and keeps what the server answered in
 * `file` (mode 0600: it holds the secret); every later start reads it back, so a reboot does not
 * register the device again. The file is written whole under another name and renamed over, so
 * a crash leaves either no file (the next start registers again, under a new id unless `id` is
 * given) or a complete one.
 */
export async function registerOnce(options: RegisterOptions & { file: string }): Promise<Registration> {
  let text: string | undefined;
  try {
    text = await readFile(options.file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const kept = JSON.parse(text) as Partial<Registration>;
    if (typeof kept.id !== 'string' || typeof kept.secret !== 'string') throw new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', `${options.file}: not a registration this library wrote (no id and secret)`, { option: 'file' });
    return { id: kept.id, secret: kept.secret, claimCode: kept.claimCode ?? null };
  }
  const registration = await register(options);
  const temporary = `${options.file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, JSON.stringify(registration) + '\n', { mode: 0o600, flag: 'wx', flush: true });
  await rename(temporary, options.file);
  return registration;
}
