// Builds the `mdocker` command over tsc's emit of server/dist/src/cli/main.js:
// - server/dist/src/cli/bundle.cjs: the CLI's modules (commander, zod, the runtime) in one
//   minified CommonJS function, each module that is import()ed initialized only when a verb
//   asks for it, so `mdocker run busybox` evaluates neither the image store nor the
//   registry client;
// - server/dist/src/cli/main.js: server/src/cli/code-cache.ts, which runs that function
//   through vm.Script with a V8 code cache per verb (server/dist/src/cli-cache/);
// - server/dist/src/cli/mdocker.cjs: the same as CommonJS, package.json's bin.
// Node 20 resolves, reads and compiles every ES module on its own, and that, then the first
// compile of each function, was most of a CLI start. tsc's other outputs stay as they were:
// the server, the tests and `mdocker serve` (main.js imports ../http/main.js) use them.
//
// main.js stays an ES module although a CommonJS one would skip Node's ES module loader
// (7-18 ms of a start here): that needs a package.json without "type" beside it, under
// which tsc's ES modules in the same directory (which two unit tests import, and which a
// plain `tsc -p server` makes the CLI again) load only with a MODULE_TYPELESS_PACKAGE_JSON
// warning on stderr. The bin, mdocker.cjs, is CommonJS by its name.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(repo, 'server/dist/src/cli');
const bundlePath = join(cliDir, 'bundle.cjs');

// The last build's chunks (esm splitting), caches of any earlier bundle, and the
// package.json of a build that made main.js CommonJS.
await rm(join(repo, 'server/dist/src/cli-chunks'), { recursive: true, force: true });
await rm(join(repo, 'server/dist/src/cli-cache'), { recursive: true, force: true });
await rm(join(cliDir, 'package.json'), { force: true });

await build({
  absWorkingDir: repo,
  entryPoints: ['server/src/cli/main.ts'],
  outfile: bundlePath,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  tsconfig: 'server/tsconfig.json',
  // Every byte is read, decoded and hashed on each start; names of locals are not needed.
  minify: true,
  legalComments: 'none',
  sourcemap: true,
  logLevel: 'warning',
  // bundle.cjs is one function expression, compiled by vm.Script and called by main.js
  // with these; its modules' import.meta.url is the bundle's, as deep in server/dist/src as
  // theirs, so native.ts and images.ts still find the addon, the launcher and the images.
  banner: {
    js: '(function (exports, require, module, __filename, __dirname, __mdockerBundleUrl, __mdockerImportServer) {',
  },
  footer: { js: '})' },
  define: { 'import.meta.url': '__mdockerBundleUrl' },
  // A vm.Script has no import(): the bundle's own become lazily initialized modules, Node's
  // modules and dbus-next (CommonJS) are required.
  supported: { 'dynamic-import': false },
  plugins: [
    {
      name: 'mdocker-external',
      setup(b) {
        // The server keeps tsc's module graph, imported by main.js; dbus-next (the systemd
        // driver) loads from node_modules only on hosts whose cgroups systemd manages.
        b.onResolve({ filter: /^\.\.\/http\/main\.js$/ }, () => ({ path: 'http-main', namespace: 'mdocker-server' }));
        b.onLoad({ filter: /.*/, namespace: 'mdocker-server' }, () => ({
          contents: 'export const serveFromArgs = async (args) => (await __mdockerImportServer()).serveFromArgs(args);',
          loader: 'js',
        }));
        b.onResolve({ filter: /^dbus-next$/ }, () => ({ path: 'dbus-next', external: true }));
        // main.ts's shebang would come first, before the function: bundle.cjs is not run by
        // itself. An empty line keeps the source map's lines.
        b.onLoad({ filter: /[/\\]server[/\\]src[/\\]cli[/\\]main\.ts$/ }, async (args) => ({
          contents: (await readFile(args.path, 'utf8')).replace(/^#!.*/, ''),
          loader: 'ts',
        }));
      },
    },
  ],
});

const bundleSha256 = createHash('sha256')
  .update(await readFile(bundlePath))
  .digest('hex');
// The loader, server/src/cli/code-cache.ts, twice. Both carry main.ts's shebang and the
// bundle's hash.
const shebang = '#!/usr/bin/env node';
const loader = {
  absWorkingDir: repo,
  entryPoints: ['server/src/cli/code-cache.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  tsconfig: 'server/tsconfig.json',
  logLevel: 'warning',
  external: ['../http/main.js'],
};
// main.js, an ES module, for `node server/dist/src/cli/main.js` (the README, the tests and
// the bench's servers).
await build({
  ...loader,
  outfile: join(cliDir, 'main.js'),
  format: 'esm',
  banner: { js: shebang },
  define: { MDOCKER_BUNDLE_SHA256: JSON.stringify(bundleSha256) },
});
// mdocker.cjs, package.json's bin, the `mdocker` a user runs: Node loads a .cjs file without
// its ES module loader whatever package.json's "type" says (7-18 ms of a start, above), and
// needs no package.json beside it.
await build({
  ...loader,
  outfile: join(cliDir, 'mdocker.cjs'),
  format: 'cjs',
  banner: {
    js: `${shebang}\n'use strict';\nconst __mdockerLoaderUrl = require('node:url').pathToFileURL(__filename).href;`,
  },
  define: { MDOCKER_BUNDLE_SHA256: JSON.stringify(bundleSha256), 'import.meta.url': '__mdockerLoaderUrl' },
  // `mdocker serve` imports the server's ES modules with import(), which CommonJS has.
  supported: { 'dynamic-import': true },
});
await mkdir(join(repo, 'server/dist/src/cli-cache'), { recursive: true, mode: 0o755 });
