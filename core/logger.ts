import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Paths never written to logs, wherever they appear (docs/security.md: nothing secret in logs). */
const REDACT = [
  'secret',
  '*.secret',
  'password',
  '*.password',
  'secretHash',
  '*.secretHash',
  'accessToken',
  '*.accessToken',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'connectionString',
  '*.connectionString',
  'options.connectionString',
  'tokenSecret',
  '*.tokenSecret',
];

export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ name: 'nitrogen', level, redact: { paths: REDACT, censor: '[redacted]' } });
}

export type { Logger };
