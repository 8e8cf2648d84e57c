// The sinks use the AMQP client as the package it is, by its name: no path into
// adapters/amqp/ (its sources or its build), so the package stays free to
// arrange its insides, and what the sinks use is what it exports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..'); // dist/test/sinks-amqp → repository
const sinks = join(root, 'adapters', 'amqp-sinks');

describe('the AMQP sinks import the client by its package name', () => {
  it('no file of adapters/amqp-sinks reaches into adapters/amqp/', () => {
    const files = readdirSync(sinks).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length >= 5);
    const specifiers = files.flatMap((f) => [...readFileSync(join(sinks, f), 'utf8').matchAll(/from\s*'([^']+)'/g)].map((m) => [f, m[1]!] as const));
    assert.ok(
      specifiers.some(([, s]) => s === '@nitrogen/amqp'),
      'the sinks use @nitrogen/amqp',
    );
    const inside = specifiers.filter(([, s]) => /(^|\/)amqp\/(src|dist)?/.test(s) || s.startsWith('@nitrogen/amqp/'));
    assert.deepEqual(inside, []);
  });
});
