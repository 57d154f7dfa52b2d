// Builds the browser assets into static/dist/ (not committed): our entry points bundled by
// esbuild (app.js with htmx, editor.js with CodeMirror), and mermaid's self-contained build copied as is (it is only loaded on pages
// that have diagrams, so it stays a separate file).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'static', 'dist');

await mkdir(dist, { recursive: true });
// app.js on every page; editor.js (CodeMirror) only on lab challenge pages.
for (const entry of ['app', 'editor']) {
  await build({
    entryPoints: [path.join(root, 'static', 'js', `${entry}.js`)],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['es2020'],
    outfile: path.join(dist, `${entry}.js`),
    logLevel: 'warning',
  });
}
const mermaid = require.resolve('mermaid/dist/mermaid.min.js');
await copyFile(mermaid, path.join(dist, 'mermaid.min.js'));
console.log('assets built in static/dist');
