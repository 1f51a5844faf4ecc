/**
 * The `mdocker` command as built: scripts/bundle-cli.mjs compiles this file to
 * server/dist/src/cli/main.js and the CLI to one CommonJS function in bundle.cjs next to
 * it, which this runs through vm.Script with a V8 code cache of its own per verb.
 *
 * Node 20 has no module compile cache (Node 22's module.enableCompileCache), and a cold
 * `mdocker run` compiles most of the runtime's functions on their first call. A cache made
 * when the script is compiled holds only its top level; one made at exit (createCachedData
 * after the run) also holds every function the run compiled, so the first successful run
 * of each verb writes it, and later runs of that verb start with those functions compiled.
 * V8 rejects a cache of another V8 version, other flags or a source of another length
 * (cachedDataRejected): the run compiles as without one and writes a new one.
 */
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Script } from 'node:vm';

/** The bundle's SHA-256 in hex, put here by scripts/bundle-cli.mjs. */
declare const MDOCKER_BUNDLE_SHA256: string;

/** What bundle.cjs is: the CLI's modules in one function (scripts/bundle-cli.mjs writes its parameters). */
type BundledCli = (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
  bundleUrl: string,
  importServer: () => Promise<unknown>,
) => void;

const cliDir = dirname(fileURLToPath(import.meta.url));
const bundlePath = join(cliDir, 'bundle.cjs');
// server/dist/src/cli-cache: wiped by every build.
const cacheDir = join(cliDir, '../cli-cache');

/**
 * One cache per verb, as a run's functions are not a ps's and one cache of all verbs would
 * be as slow to load as the compiles it saves; anything not a plain word (options, no verb)
 * shares one. None for `serve`, which runs the server's own modules. V8 also rejects a
 * cache made under other V8 flags (a `node --max-semi-space-size=64 main.js ps` against a
 * plain `mdocker ps`), so the flags name the file too: one cache each, not one rewritten
 * by turns.
 */
function cacheName(): string | null {
  const verb = process.argv[2];
  if (verb === 'serve') return null;
  const flags = [process.version, ...process.execArgv, process.env.NODE_OPTIONS ?? ''].join('\0');
  const name = verb !== undefined && /^[a-z]{1,16}$/.test(verb) ? verb : 'default';
  return `${name}-${MDOCKER_BUNDLE_SHA256.slice(0, 16)}-${fnv1a(flags)}.v8`;
}

/** 32-bit FNV-1a in hex: names a cache file, needs no node:crypto (a few ms to load). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** Only root or the bundle's owner (who could change the bundle itself) may have written it. */
function isTrusted(stats: { uid: number; mode: number }, owners: readonly number[]): boolean {
  return owners.includes(stats.uid) && (stats.mode & 0o022) === 0;
}

/**
 * A cache is code: read only when isTrusted. fstat on the descriptor read, so the file
 * checked is the file used; O_NOFOLLOW and O_NONBLOCK so a link or a FIFO in its place is
 * refused, not followed or waited on.
 */
function readTrustedCache(path: string, owners: readonly number[]): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || !isTrusted(stats, owners)) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the cache through a new file and a rename, so a reader never sees half of one; any failure leaves none. */
function writeCache(path: string, data: Buffer, owners: readonly number[]): void {
  try {
    mkdirSync(cacheDir, { mode: 0o755 });
  } catch {
    // Already there (the build makes it), or not ours to make: checked next.
  }
  const temp = `${path}.${process.pid}.tmp`;
  try {
    if (!isTrusted(statSync(cacheDir), owners)) return;
    // wx: O_CREAT | O_EXCL, never through an existing file or link.
    const fd = openSync(temp, 'wx', 0o644);
    try {
      for (let done = 0; done < data.length;) done += writeSync(fd, data, done);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // Never made.
    }
  }
}

const owners = [0, statSync(bundlePath).uid];
const name = cacheName();
const cachePath = name === null ? null : join(cacheDir, name);
const cachedData = cachePath === null ? undefined : readTrustedCache(cachePath, owners);
const script = new Script(readFileSync(bundlePath, 'utf8'), { filename: bundlePath, cachedData });
if (cachePath !== null && (cachedData === undefined || script.cachedDataRejected)) {
  // Only a run that succeeded: one that stopped at a bad flag compiled little of its verb.
  process.on('exit', (code) => {
    if (code === 0) writeCache(cachePath, script.createCachedData(), owners);
  });
}

/**
 * Node's builtins that only some verbs use, each 1-9 ms to load: commander requires
 * child_process at its top for executable subcommands, which mdocker has none of, and the
 * runtime's modules import crypto, net, os, streams and fs/promises at their tops for calls
 * that `run` or `ps` may never make. The bundle reaches a builtin's exports only through
 * property reads (esbuild's CommonJS output calls `(0, m.spawn)(...)`), so a proxy that
 * requires the module at its first property read is the module as far as the bundle can
 * tell (esbuild's __toESM, for an import() of one, lists and copies its keys), and a verb
 * that never reads one never loads it.
 */
const lazyBuiltins = new Set([
  'node:child_process',
  'node:crypto',
  'node:dgram',
  'node:fs/promises',
  'node:http',
  'node:https',
  'node:net',
  'node:os',
  'node:stream',
  'node:stream/promises',
  'node:tty',
  'node:zlib',
]);

function lazyRequire(real: NodeJS.Require): NodeJS.Require {
  const lazy = ((id: string): unknown => {
    if (!lazyBuiltins.has(id)) return real(id);
    let loaded: object | undefined;
    const load = (): object => (loaded ??= real(id) as object);
    return new Proxy(
      {},
      {
        get: (_target, key) => Reflect.get(load(), key),
        set: (_target, key, value) => Reflect.set(load(), key, value),
        has: (_target, key) => Reflect.has(load(), key),
        // esbuild's __toESM (an import() of a builtin) copies the exports by their keys.
        ownKeys: () => Reflect.ownKeys(load()),
        getOwnPropertyDescriptor: (_target, key) => {
          const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
          // A proxy may not report as non-configurable what its empty target does not have.
          return descriptor && { ...descriptor, configurable: true };
        },
      },
    );
  }) as NodeJS.Require;
  return Object.assign(lazy, {
    resolve: real.resolve,
    cache: real.cache,
    main: real.main,
    extensions: real.extensions,
  });
}

const module = { exports: {} };
(script.runInThisContext() as BundledCli)(
  module.exports,
  lazyRequire(createRequire(bundlePath)),
  module,
  bundlePath,
  cliDir,
  pathToFileURL(bundlePath).href,
  // vm.Script has no import() of its own: `mdocker serve` loads the server's ES modules here.
  () => import('../http/main.js'),
);
