import { createRequire } from 'node:module';

/**
 * Keeps mqtt-packet's disabled `debug` loggers cheap. Evaluated for its effect, before aedes
 * loads mqtt-packet: mqtt-transport.ts imports it first.
 *
 * Why: mqtt-packet calls its loggers (`mqtt-packet:parser`, `mqtt-packet:writeToStream`) about
 * 25 times per PUBLISH and PUBACK, logging on or off, and each call reads the logger's `enabled`
 * accessor. `debug` defines that accessor with a new getter on every logger, so V8 keeps fast
 * properties only for the first logger created in the process; every later one is a dictionary
 * object, whose calls V8 cannot inline: a disabled call then costs about four times as much and
 * allocates its arguments array. Whether mqtt-packet's loggers were the process's first depended
 * on which plugin module happened to load first; when they were not, ingest allocated ~2.7 KB
 * more per message and cost 10–20% more CPU (bench/RESULTS.md, "Hardening: the cost of the limits").
 *
 * An object used as a prototype gets fast properties back (V8 optimizes prototypes for lookups),
 * so each mqtt-packet logger is made the prototype of a throwaway object as it is created. This
 * changes nothing the logger does. Anything unexpected (another `debug`, a future mqtt-packet)
 * leaves the loggers as they are: only speed depends on it.
 */
const LOGGERS_OF = 'mqtt-packet:';

interface CreateDebug {
  init?: (logger: { namespace?: string }) => void;
}

try {
  // The `debug` that mqtt-packet itself resolves, through aedes, whichever copy that is.
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const createDebug = createRequire(fromAedes.resolve('mqtt-packet'))('debug') as CreateDebug;
  const init = createDebug.init;
  if (typeof init === 'function' && !(init as { fastPackets?: boolean }).fastPackets) {
    const fastInit = function (this: unknown, logger: { namespace?: string }): void {
      init.call(this, logger);
      if (logger.namespace?.startsWith(LOGGERS_OF)) Object.setPrototypeOf({}, logger);
    };
    createDebug.init = Object.assign(fastInit, { fastPackets: true });
  }
} catch {
  // Not resolvable as expected: the loggers keep their default shape.
}
