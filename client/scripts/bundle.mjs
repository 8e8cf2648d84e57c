// The browser build: dist/src/browser.js and what it imports, as one ES module for a <script type="module">.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const result = await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/browser.js'],
  outfile: 'dist/browser/nitrogen-client.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  minify: true,
  metafile: true,
  logLevel: 'warning',
});
// Nothing of Node may reach the bundle: no Buffer, no node: modules.
const inputs = Object.keys(result.metafile.inputs);
const nodeOnly = inputs.filter((path) => /\/(mqtt|node)\//.test(path) || path.startsWith('node:'));
if (nodeOnly.length > 0) throw new Error(`the browser bundle pulls in Node-only modules: ${nodeOnly.join(', ')}`);
