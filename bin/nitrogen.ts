#!/usr/bin/env node
import { exitCode } from '../cli/exit-codes.js';
import { runCli } from '../cli/main.js';

/**
 * `nitrogen`: the server (`nitrogen serve`, and a bare `nitrogen`, which is what `npm start`
 * runs) and the operators' commands (docs/cli.md). The exit status means what cli/exit-codes.ts
 * says.
 */
const argv = process.argv.slice(2);
runCli(argv.length === 0 ? ['serve'] : argv).then(
  (code) => {
    // A command is done: exit now rather than when idle keep-alive sockets close.
    if (code !== null) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`nitrogen: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(exitCode('internal'));
  },
);
