import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientErrorCodes } from '../src/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('@nitrogen/client as a package', () => {
  it('documents every client error code in its README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const documented = new Set([...readme.matchAll(/^\| `(NITROGEN_CLIENT_[A-Z_]+)` \|/gm)].map((m) => m[1]));
    for (const code of Object.keys(ClientErrorCodes)) assert.ok(documented.has(code), `${code} is not in client/README.md`);
    for (const code of documented) assert.ok(code! in ClientErrorCodes, `client/README.md lists ${code}, which the code does not have`);
  });

  it('imports only its own files and Node built-ins, and its browser half not even those', () => {
    const builtins = new Set(builtinModules);
    for (const file of sources(join(root, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
        const nodeOnly = file.includes('/node/') || file.endsWith('/index.ts');
        if (spec!.startsWith('.')) continue;
        assert.ok(spec!.startsWith('node:') && builtins.has(spec!.slice(5)), `${file} imports ${spec}`);
        assert.ok(nodeOnly, `${file} imports ${spec}, but the browser build includes it`);
      }
    }
  });
});
