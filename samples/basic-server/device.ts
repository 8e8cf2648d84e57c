import { connect, type Session } from '@nitrogen/client';

/**
 * A device of this server on the client library (`@nitrogen/client`): it sends a reading every
 * `everyMs`, keeps what it cannot send yet in a queue file (so a reboot loses nothing), and
 * answers `ping` commands. Returns the session and a function that stops it.
 */
export async function startDevice(options: { url: string; id: string; secret: string; queueFile: string; everyMs?: number }): Promise<{ session: Session; stop(): Promise<void> }> {
  const session = await connect({ url: options.url, id: options.id, secret: options.secret, queue: { file: options.queueFile }, waitForServer: false });
  session.on('rejected', (id, error) => console.error(`message ${id} refused: ${error.code}`));
  await session.onCommand('ping', (command) => ({ pong: command.body ?? null, at: new Date().toISOString() }));
  const timer = setInterval(() => {
    session.send({ type: 'telemetry', body: { temperatureC: 20 + Math.round(Math.random() * 50) / 10 } });
  }, options.everyMs ?? 1000);
  return {
    session,
    stop: async () => {
      clearInterval(timer);
      await session.close(); // what is not acknowledged yet stays in the queue file
    },
  };
}

// Run directly: NITROGEN_URL=http://127.0.0.1:3000/api/v1 DEVICE_ID=car-1 DEVICE_SECRET=… node dist/samples/basic-server/device.js
if (import.meta.url === `file://${process.argv[1]}`) {
  const { NITROGEN_URL = 'http://127.0.0.1:3000/api/v1', DEVICE_ID, DEVICE_SECRET } = process.env;
  if (!DEVICE_ID || !DEVICE_SECRET) throw new Error('set DEVICE_ID and DEVICE_SECRET (the secret POST /principals returned)');
  const device = await startDevice({ url: NITROGEN_URL, id: DEVICE_ID, secret: DEVICE_SECRET, queueFile: `data/${DEVICE_ID}.queue` });
  device.session.on('online', () => console.log(`${DEVICE_ID}: online`)).on('offline', () => console.log(`${DEVICE_ID}: offline, queueing`));
  process.once('SIGINT', () => void device.stop().then(() => process.exit(0)));
}
