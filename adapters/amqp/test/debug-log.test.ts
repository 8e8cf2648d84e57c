// The debug log, with every namespace on, shows the protocol but no secret:
// neither the SASL PLAIN password nor message payloads, in any encoding.
import assert from 'node:assert/strict';
import { format } from 'node:util';
import createDebug from 'debug';
import { Client } from '../src/index.js';
import { RheaPeer } from './helpers/rhea-peer.js';

describe('AMQP client debug log', () => {
  it('shows frames and socket traffic, but not the password or payload bytes', async () => {
    const password = 's3cret-Pa55word';
    const marker = 'payload-marker-7f3a';
    const peer = await RheaPeer.start({ plain: { user: 'device', pass: password } });
    const lines: string[] = [];
    const previous = createDebug.disable();
    const log = createDebug.log;
    createDebug.enable('nitrogen:amqp:*');
    createDebug.log = (...args: unknown[]) => {
      lines.push(format(...args));
    };
    try {
      const conn = await Client.connect(peer.url.replace('amqp://', `amqp://device:${password}@`));
      const sender = await conn.createSender('q');
      await sender.send({ body: Buffer.from(marker), applicationProperties: { note: marker } });
      const receiver = await conn.createReceiver('q', { credit: 1 });
      const d = (await receiver.receive())!;
      assert.equal((d.message.body as Buffer).toString(), marker);
      d.accept();
      await conn.close();
    } finally {
      createDebug.log = log;
      createDebug.enable(previous);
      await peer.stop();
    }
    const all = lines.join('\n');
    assert.match(all, /sasl-init \{ mechanism: 'PLAIN', initialResponse: '<\d+ bytes>'/);
    assert.match(all, /transfer .* \+\d+ payload bytes/);
    assert.match(all, /<- \d+ bytes/);
    for (const secret of [password, marker]) {
      for (const encoded of [secret, Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('base64')]) {
        assert.ok(!all.includes(encoded), `the log shows ${secret} (${encoded})`);
      }
    }
    assert.ok(!/(?:[0-9a-f]{2} ){8}/.test(all), 'the log shows raw bytes');
  });
});
