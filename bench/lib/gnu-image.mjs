// A bench-only images directory for the throughput phase's like-for-like run with GNU
// binaries: `busybox` (a copy of the repo's image) and `gnu`, the same plus the host's GNU
// `yes` and `head` in /usr/local/bin with the shared libraries they load (from ldd). wetty
// and the bare reader run those very files on the host; the container runs them from its
// image, so both sides write with the same binaries. busybox's shell runs its own applets
// ahead of PATH, so the command names them by path (GNU_BIN).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const GNU_BIN = '/usr/local/bin';
const TOOLS = ['/usr/bin/yes', '/usr/bin/head'];

/** The libraries `ldd` lists for a program, by absolute path (the vdso has none). */
function sharedLibraries(program) {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  const paths = new Set();
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) paths.add(m[1]);
  }
  return [...paths];
}

/** Builds `${work}/images-gnu`; { dir } or { skipped: why }. */
export function buildGnuImages({ repo, work }) {
  const busybox = join(repo, 'rootfs/images/busybox');
  if (!existsSync(join(busybox, '.mdocker-image'))) return { skipped: 'the busybox image is not built' };
  for (const tool of TOOLS) if (!existsSync(tool)) return { skipped: `${tool} is missing` };
  const dir = join(work, 'images-gnu');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    // As the bench's other copies of the image (run.mjs, ensureHelpers): its applet links kept.
    for (const name of ['busybox', 'gnu']) {
      cpSync(busybox, join(dir, name), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    }
    const gnu = join(dir, 'gnu');
    const marker = readFileSync(join(gnu, '.mdocker-image'), 'utf8').replace(/^name=busybox$/m, 'name=gnu');
    writeFileSync(join(gnu, '.mdocker-image'), marker);
    mkdirSync(join(gnu, GNU_BIN), { recursive: true, mode: 0o755 });
    for (const tool of TOOLS) {
      copyFileSync(tool, join(gnu, GNU_BIN, tool.split('/').pop()));
      for (const lib of sharedLibraries(tool)) {
        mkdirSync(join(gnu, dirname(lib)), { recursive: true, mode: 0o755 });
        copyFileSync(lib, join(gnu, lib));
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { skipped: `cannot build the images: ${String(err.message ?? err).split('\n')[0]}` };
  }
  return { dir };
}

/** The throughput command with the GNU tools named by path. */
export function gnuScript(script) {
  return script.replace(/\byes /, `${GNU_BIN}/yes `).replace(/\| head /, `| ${GNU_BIN}/head `);
}
