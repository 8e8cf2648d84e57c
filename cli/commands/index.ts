import type { Command } from '../command.js';
import { messageCommands } from './messages.js';
import { onboardingCommands } from './onboarding.js';
import { permissionCommands } from './permissions.js';
import { principalCommands } from './principals.js';
import { sessionCommands } from './session.js';
import { sinkCommands } from './sinks.js';

/** The server itself: started here, or its configuration checked without starting it. */
const serverCommands: Command[] = [
  {
    name: 'serve',
    summary: 'run the server (what npm start and a bare `nitrogen` do)',
    options: { config: { type: 'string', value: 'FILE', help: 'the configuration file (default: NITROGEN_CONFIG, else ./nitrogen.config.json)' } },
    help: "The configuration is docs/configuration.md's; SIGTERM or Ctrl-C stops it gracefully.",
    async run(ctx) {
      if (ctx.options.config) process.env.NITROGEN_CONFIG = ctx.options.config as string;
      // Loaded here only: the other commands need none of the server's code.
      const { serveOrExit } = await import('../serve.js');
      await serveOrExit();
      return 'serving';
    },
  },
  {
    name: 'config check',
    summary: 'validate a configuration file as serve would, without starting; every problem with its line',
    args: [{ name: 'FILE' }],
    help: "Every plugin is resolved and its options checked; the environment's overrides (NITROGEN_REST_PORT…)\napply as they would to serve. Exit 0 when valid, 6 with the problems.",
    async run(ctx) {
      const { checkConfigFile } = await import('../config-check.js');
      const result = await checkConfigFile(ctx.args.FILE as string, ctx.env);
      ctx.out.result(result, () =>
        result.ok
          ? `${result.file}: valid\n`
          : result.problems.map((p) => `${result.file}${p.line ? `:${p.line}:${p.column}` : ''}: ${p.message}`).join('\n') + `\n${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}\n`,
      );
      return result.ok ? 'ok' : 'invalid';
    },
  },
];

export const COMMANDS: Command[] = [...serverCommands, ...sessionCommands, ...principalCommands, ...permissionCommands, ...onboardingCommands, ...messageCommands, ...sinkCommands];
