import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { CliError } from './exit-codes.js';

/** A line from the terminal, the question on stderr so stdout stays the result's. */
async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/**
 * A secret typed on the terminal without echo: the terminal in raw mode, each key read here
 * (Enter ends, Backspace erases, Ctrl-C and Ctrl-D abandon), nothing written back but a newline.
 */
function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (error?: CliError) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      error ? reject(error) : resolve(typed);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || (ch === '\u0004' && typed === '')) return done(new CliError('usage', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** All of stdin (`--secret-stdin`), without the line ending that `echo` or a here-string adds. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** A secret kept in a file (`--secret-file`, such as the server's data/admin.secret) or given on stdin; undefined when neither option is. */
async function givenSecret(file: string | undefined, stdin: boolean | undefined, names: [string, string]): Promise<string | undefined> {
  if (file !== undefined && stdin) throw new CliError('usage', `--${names[0]} and --${names[1]}: give one`);
  if (stdin) return readStdin();
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CliError('usage', `--${names[0]}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The credential of `login` and `tokens issue`: from a file, stdin, or typed without echo.
 * Never from the command line, where `ps` and the shell's history would show it.
 */
export async function secretFrom(options: { 'secret-file'?: string; 'secret-stdin'?: boolean }): Promise<string> {
  let secret = await givenSecret(options['secret-file'], options['secret-stdin'], ['secret-file', 'secret-stdin']);
  if (secret === undefined) {
    if (!process.stdin.isTTY) throw new CliError('usage', 'no terminal to ask the secret on: use --secret-file FILE or --secret-stdin');
    secret = await askHidden('secret or password: ');
  }
  if (secret === '') throw new CliError('usage', 'the secret is empty');
  return secret;
}

/** A new password: from a file, stdin, or typed twice without echo (so a slip of a finger is caught). */
export async function passwordFrom(options: { 'password-file'?: string; 'password-stdin'?: boolean }): Promise<string> {
  let password = await givenSecret(options['password-file'], options['password-stdin'], ['password-file', 'password-stdin']);
  if (password === undefined) {
    if (!process.stdin.isTTY) throw new CliError('usage', 'no terminal to ask the password on: use --password-file FILE or --password-stdin');
    password = await askHidden('new password: ');
    if ((await askHidden('again: ')) !== password) throw new CliError('usage', 'the two passwords differ');
  }
  if (password === '') throw new CliError('usage', 'the password is empty');
  return password;
}

/** The principal id: `--id`, else asked on the terminal. */
export async function idFrom(options: { id?: string }): Promise<string> {
  if (options.id) return options.id;
  if (!process.stdin.isTTY) throw new CliError('usage', 'no terminal to ask the principal id on: use --id ID');
  const id = await ask('principal id: ');
  if (!id) throw new CliError('usage', 'no principal id given');
  return id;
}
