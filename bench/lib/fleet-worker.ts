import { runFleet, type SimulatorOptions } from '../../samples/car-telemetry/simulator.js';

/**
 * The car-telemetry fleet simulator (samples/car-telemetry) in a child process, on raw sockets
 * unless the options say `link: 'library'`: its own file
 * descriptors (the limit is per process) and its own event loop. It runs until the parent
 * sends `stop`, forwarding each interval report, then the summary.
 */
process.once('message', (options: SimulatorOptions) => {
  const stop = new AbortController();
  process.on('message', (msg: { op: string }) => msg.op === 'stop' && stop.abort());
  runFleet({ link: 'raw', ...options, duration: 0, signal: stop.signal, onReport: (report) => process.send!({ op: 'report', report }) }).then(
    (summary) => process.send!({ op: 'summary', summary }, () => process.exit(0)),
    (err: Error) => process.send!({ op: 'error', message: err.message }, () => process.exit(1)),
  );
});
