// The portal's browser build (docs/portal.md): app/main.tsx and what it imports — Preact, the
// client library's browser build, the stylesheet — as one ES module and one stylesheet with
// content hashes in their names, and index.html naming them. Run by `npm run build` and `npm start`.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const out = `${root}dist/plugins/portal/public`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ['plugins/portal/app/main.tsx'],
  outdir: `${out}/assets`,
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  // From its sources: `npm start` builds the package only, not the client library's dist.
  alias: { '@nitrogen/client/browser': './client/src/browser.ts' },
  sourcemap: true,
  minify: true,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
const script = outputs.find((name) => name.endsWith('.js'));
const style = outputs.find((name) => name.endsWith('.css'));
if (!script || !style) throw new Error(`the portal build made no script or stylesheet: ${outputs.join(', ')}`);
const nodeOnly = Object.keys(result.metafile.inputs).filter((path) => /client\/src\/(mqtt|node)\//.test(path) || path.startsWith('node:'));
if (nodeOnly.length > 0) throw new Error(`the portal bundle pulls in Node-only modules: ${nodeOnly.join(', ')}`);

writeFileSync(
  `${out}/index.html`,
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Nitrogen</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<noscript>The Nitrogen portal needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`,
);
