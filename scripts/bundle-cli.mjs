// Bundles the `mdocker` command into server/dist/src/cli/main.js (over tsc's emit of that
// file) and server/dist/src/cli-chunks/: Node 20 resolves, reads and compiles every ES
// module on its own, and that, not the code run, was most of a CLI start. Each dynamic
// import() stays a chunk loaded when a verb asks for it, so `mdocker run busybox` loads
// neither the image store nor the registry client. tsc's other outputs stay as they were:
// the server, the tests and `mdocker serve` (which imports ../http/main.js at run time)
// use them.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(repo, 'server/dist/src');

await rm(join(outdir, 'cli-chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: repo,
  entryPoints: { 'cli/main': 'server/src/cli/main.ts' },
  outdir,
  // Chunks sit as deep as tsc's modules (server/dist/src/<dir>/): native.ts and images.ts
  // find the repository from import.meta.url.
  chunkNames: 'cli-chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  tsconfig: 'server/tsconfig.json',
  sourcemap: true,
  logLevel: 'warning',
  // The bundled CommonJS packages (commander, tar-stream) require Node's modules.
  banner: {
    js: "import { createRequire as __mdockerCreateRequire } from 'node:module'; const require = __mdockerCreateRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'mdocker-external',
      setup(b) {
        // The server keeps tsc's module graph; dbus-next (the systemd driver) loads from
        // node_modules only on hosts whose cgroups systemd manages.
        b.onResolve({ filter: /^\.\.\/http\/main\.js$/ }, () => ({ path: '../http/main.js', external: true }));
        b.onResolve({ filter: /^dbus-next$/ }, () => ({ path: 'dbus-next', external: true }));
      },
    },
  ],
});
