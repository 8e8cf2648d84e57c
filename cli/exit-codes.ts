/**
 * What `nitrogen`'s exit status means, one table for the code, `--help` and docs/cli.md (a test
 * keeps the doc's table equal to this one). Scripts branch on these, so a number never changes
 * meaning; new cases get new numbers.
 */
export const EXIT_CODES = {
  ok: { code: 0, meaning: 'done' },
  refused: { code: 1, meaning: 'the server refused the request, or answered an error (its NITROGEN_ERR code is printed); a bulk import with a refused row; `health` of a server that is not ready' },
  usage: { code: 2, meaning: 'bad command line: unknown command or option, missing or malformed argument (the usage is printed)' },
  auth: { code: 3, meaning: 'not logged in, the stored token expired or was revoked, or the credentials were refused: run `nitrogen login URL`' },
  notFound: { code: 4, meaning: 'what the command names does not exist (or the caller may not see it)' },
  unreachable: { code: 5, meaning: 'no Nitrogen server answered at the URL: refused, timed out, or not Nitrogen' },
  invalid: { code: 6, meaning: '`config check`: the configuration has problems (each is printed)' },
  internal: { code: 70, meaning: 'a bug in the CLI: its stack is printed (EX_SOFTWARE of sysexits.h)' },
} as const;

export type ExitName = keyof typeof EXIT_CODES;
export const exitCode = (name: ExitName): number => EXIT_CODES[name].code;

/** A failure the CLI explains in one line and exits with. */
export class CliError extends Error {
  constructor(
    readonly exit: ExitName,
    message: string,
    /** Printed after the message: the command's usage for a usage error. */
    readonly hint?: string,
  ) {
    super(message);
  }
}
