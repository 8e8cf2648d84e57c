import { flags, fmt, printHeader } from './lib/machine.js';
import { BenchCa } from './lib/certificates.js';
import { LoadGenerator } from './lib/load.js';
import type { LoadClient } from './lib/load-worker.js';
import { startNitrogen } from './lib/targets.js';
import { tempDir } from './lib/temp-dir.js';

/**
 * `npm run bench:tls-connect`: how fast devices connect over MQTT over TLS with client
 * certificates from a registered authority (no password), against the same devices over TLS with
 * their secrets, and over plain TCP with their secrets: one server (embedded default store), the
 * devices registered first, each connection a TLS handshake and a CONNECT → CONNACK.
 */
const options = flags({ devices: 1000, concurrency: 100 });
printHeader(`MQTT connect rate: ${fmt(options.devices)} devices over TLS with client certificates`);
const dir = tempDir('nitrogen-bench-certs-');
try {
  const ca = new BenchCa(dir.path);
  const target = await startNitrogen({ connections: options.devices, tls: ca.tls });
  try {
    const registered = await fetch(`${target.server.rest}/certificate-authorities`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ certificate: ca.caCert }),
    });
    if (registered.status !== 201) throw new Error(`registering the CA failed: ${registered.status} ${await registered.text()}`);
    const started = performance.now();
    const { key, certs } = ca.clients(target.clients.map((c) => c.clientId));
    console.log(`certificates: ${fmt(certs.length)} client certificates (EC P-256) issued by a test CA in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const plainPort = Number(new URL(target.server.mqtt).port);
    const runs: Array<{ name: string; port: number; tls: boolean; clients: LoadClient[] }> = [
      { name: 'TLS, client certificate, no password', port: target.port, tls: true, clients: target.clients.map((c, i) => ({ clientId: c.clientId, topic: c.topic, cert: certs[i]!, key })) },
      { name: 'TLS, secret (no client certificate)', port: target.port, tls: true, clients: target.clients },
      { name: 'plain TCP, secret', port: plainPort, tls: false, clients: target.clients },
    ];
    console.log('\n| connections | how | connect seconds | connects/s |');
    console.log('|---|---|---:|---:|');
    for (const run of runs) {
      const load = await LoadGenerator.connect({
        host: target.host,
        port: run.port,
        clients: run.clients,
        window: 0,
        rate: 0,
        payloads: ['{}'],
        localAddresses: [],
        connectConcurrency: options.concurrency,
        ...(run.tls ? { tlsCa: ca.caCert } : {}),
      });
      const report = await load.report();
      await load.stop();
      if (report.connected < run.clients.length || report.errors.length > 0) console.log(`PROBLEM ${run.name}: ${report.connected} connected; ${report.errors.slice(0, 3).join('; ')}`);
      console.log(`| ${fmt(run.clients.length)} | ${run.name} | ${report.connectSeconds.toFixed(2)} | ${fmt(run.clients.length / report.connectSeconds)} |`);
    }
    console.log(`(${options.concurrency} connects in flight; server and load generator on this machine's ${'2'} cores)`);
  } finally {
    await target.stop();
  }
} finally {
  dir.remove();
}
