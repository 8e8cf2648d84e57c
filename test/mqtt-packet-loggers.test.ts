import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TRANSPORT = new URL('../plugins/mqtt/mqtt-transport.js', import.meta.url).href;

/**
 * A fresh process where another package creates a `debug` logger before the MQTT transport is
 * loaded (as the REST plugin's koa may): it records every logger created, loads the transport,
 * calls the loggers as mqtt-packet does, and prints whether V8 gave each fast properties
 * (`%HasFastProperties`, hence --allow-natives-syntax). plugins/mqtt/packet-loggers.ts says why
 * that decides what a message costs.
 */
const CHILD = `
import { createRequire } from 'node:module';
const fromAedes = createRequire(createRequire(${JSON.stringify(fileURLToPath(TRANSPORT))}).resolve('aedes'));
const createDebug = createRequire(fromAedes.resolve('mqtt-packet'))('debug');
const created = new Map();
const init = createDebug.init;
createDebug.init = function (logger) { init.call(this, logger); created.set(logger.namespace, logger); };
createDebug('another-package:first');
await import(${JSON.stringify(TRANSPORT)});
const control = createDebug('another-package:later');
const fast = {};
for (const [name, logger] of [...created, ['control', control]]) {
  for (let i = 0; i < 1000; i++) logger('packet %d', i);
  fast[name] = %HasFastProperties(logger);
}
console.log(JSON.stringify(fast));
`;

describe('MQTT hot path: mqtt-packet loggers', function () {
  it('keeps mqtt-packet loggers fast when another package created the first logger of the process', async function () {
    const { stdout } = await run(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', CHILD]);
    const fast = JSON.parse(stdout) as Record<string, boolean>;
    // The premise: a logger created after the first is slow unless made fast.
    assert.equal(fast.control, false);
    assert.equal(fast['mqtt-packet:parser'], true);
    assert.equal(fast['mqtt-packet:writeToStream'], true);
  });
});
