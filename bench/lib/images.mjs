// issue 15's numbers: pull + unpack of a ~100 MB image from a registry on loopback, mdocker
// beside skopeo + umoci; and the start of a 5-layer image beside a 1-layer one.
//
// The images are made here from random bytes (nothing is downloaded): a registry is
// Debian's docker-registry on a free loopback port with its storage in bench/work, the
// images are pushed to it with skopeo. mdocker's store for each pull is a data dir of its
// own in bench/work (MDOCKER_DATA_DIR), removed after; its containers live under
// `<stateRoot>-images` with their cgroups below the bench's cgroup parent.
import { withSection } from './report.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { fmtRatio, loadavg, sleep, summarize } from './util.mjs';

export const SECTION_HEADING = '## 10. Images: pull + unpack, and the start of a layered image (issue 15)';
const MiB = 1024 * 1024;
const LAUNCHER_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
/** The big image: 4 gzip layers of random files, 25 MiB each. */
const BIG_LAYERS = 4;
const BIG_LAYER_BYTES = 25 * MiB;
const BIG_FORMAT = 'v1: 4 layers x (8 x 2 MiB + 1 KiB..32 KiB files to 25 MiB), random bytes';

/**
 * Spawns under GNU time, bounded; resolves with code, stderr, the wall time in ms and the
 * CPU seconds (user + system) the command and its children used.
 */
function runTimed(file, args, { env = process.env, timeoutMs = 600_000 } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'cpu %U %S', file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => {
      if (stderr.length < 4000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stderr: String(err), ms: performance.now() - t0 });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
      resolve({
        code: code ?? 128,
        stderr: stderr.trim(),
        ms: performance.now() - t0,
        cpuS: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN,
      });
    });
  });
}

async function must(what, promise) {
  const r = await promise;
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr.slice(-400)}`);
  return r;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A ustar header (names under 100 bytes) for a file or directory owned by root. */
function tarHeader(name, size, type) {
  const h = Buffer.alloc(512);
  const put = (offset, length, text) => h.write(text, offset, length, 'latin1');
  const octal = (offset, length, value) => put(offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
  put(0, 100, name);
  octal(100, 8, type === '5' ? 0o755 : 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1_700_000_000);
  put(148, 8, '        ');
  put(156, 1, type);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const byte of h) sum += byte;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** A layer tar of random files under d<index>/: a few large, many small, to bytes in all. */
function randomLayerTar(index, bytes) {
  const parts = [];
  let files = 0;
  const dir = (name) => parts.push(tarHeader(name, 0, '5'));
  const file = (name, size) => {
    files++;
    parts.push(tarHeader(name, size, '0'), randomBytes(size));
    const pad = (512 - (size % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  };
  dir(`d${index}/`);
  let left = bytes;
  for (let i = 0; i < 8; i++, left -= 2 * MiB) file(`d${index}/big-${i}`, 2 * MiB);
  for (let i = 0; left > 0; i++) {
    if (i % 100 === 0) dir(`d${index}/s${i / 100}/`);
    const size = Math.min(left, 1024 + Math.floor(Math.random() * 31 * 1024));
    file(`d${index}/s${Math.floor(i / 100)}/f-${i}`, size);
    left -= size;
  }
  parts.push(Buffer.alloc(1024));
  return { tar: Buffer.concat(parts), files };
}

/** Writes an OCI layout (one manifest, ref name `tag`) of gzip layers made from tars. */
function writeLayout(dir, tars, config = {}) {
  rmSync(dir, { recursive: true, force: true });
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (bytes) => {
    const digest = sha256(bytes);
    writeFileSync(join(blobs, digest), bytes);
    return { digest: `sha256:${digest}`, size: bytes.length };
  };
  const layers = tars.map((tar) => ({
    diffId: `sha256:${sha256(tar)}`,
    ...put(gzipSync(tar, { level: 1 })),
  }));
  const configBlob = put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config,
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
        layers: layers.map(({ digest, size }) => ({
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          digest,
          size,
        })),
      }),
    ),
  );
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  return layers.reduce((sum, l) => sum + l.size, 0);
}

/** The busybox tree as tar entries (GNU tar keeps its symlinks and owners). */
function busyboxTar(repo) {
  const r = spawnSync(
    'tar',
    ['-C', join(repo, 'rootfs/images/busybox'), '--exclude=./.mdocker-image', '--numeric-owner', '-cf', '-', '.'],
    { maxBuffer: 64 * MiB },
  );
  if (r.status !== 0) throw new Error(`tar of the busybox image: ${r.stderr}`);
  return r.stdout;
}

export async function measureImages({ repo, work, stateRoot, cgroupParent, scale, log, deadlineAt }) {
  const out = { load: { start: loadavg() }, config: scale, leftovers: [] };
  const missing = ['docker-registry', 'skopeo', 'umoci'].filter((t) => spawnSync('which', [t]).status !== 0);
  if (missing.length) {
    // Debian's packages of the image tests (scripts/system-deps.sh --test) plus umoci.
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  const still = ['docker-registry', 'skopeo', 'umoci'].filter((t) => spawnSync('which', [t]).status !== 0);
  if (still.length) throw new Error(`missing ${still.join(', ')} (apt-get install ${still.join(' ')})`);
  out.versions = {
    skopeo: spawnSync('skopeo', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    umoci: spawnSync('umoci', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    registry: spawnSync('docker-registry', ['--version'], { encoding: 'utf8' }).stdout.trim(),
  };

  const dir = join(work, 'images');
  const imagesRoot = `${stateRoot}-images`;
  mkdirSync(dir, { recursive: true });
  mkdirSync(imagesRoot, { recursive: true });
  const cli = join(repo, 'server/dist/src/cli/main.js');
  let registry = null;
  let runtime = null;
  try {
    // ------------------------------------------------ the images
    const big = join(dir, 'big-layout');
    const marker = join(big, 'format.json');
    const made = existsSync(marker) ? JSON.parse(readFileSync(marker, 'utf8')) : null;
    if (made?.format === BIG_FORMAT) out.bigImage = made;
    else {
      log('  making the ~100 MiB image (random bytes)');
      const layers = Array.from({ length: BIG_LAYERS }, (_, i) => randomLayerTar(i, BIG_LAYER_BYTES));
      const compressedBytes = writeLayout(
        big,
        layers.map((l) => l.tar),
        { Cmd: ['/bin/sh'] },
      );
      out.bigImage = { format: BIG_FORMAT, files: layers.reduce((n, l) => n + l.files, 0), compressedBytes };
      writeFileSync(marker, JSON.stringify(out.bigImage));
    }
    const bigFiles = (BIG_LAYERS * BIG_LAYER_BYTES) / MiB;

    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const regDir = join(dir, 'registry');
    rmSync(regDir, { recursive: true, force: true });
    mkdirSync(regDir, { recursive: true });
    writeFileSync(
      join(dir, 'registry.yml'),
      [
        'version: 0.1',
        'log: { level: error, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${regDir} } }`,
        `http: { addr: "${host}" }`,
        '',
      ].join('\n'),
    );
    registry = spawn('docker-registry', ['serve', join(dir, 'registry.yml')], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://${host}/v2/`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (i > 100) throw new Error(`the registry on ${host} did not start`);
      await sleep(100);
    }
    await must(
      'skopeo copy to the registry',
      runTimed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${big}:v1`, `docker://${host}/bench/big:v1`]),
    );

    // ------------------------------------------------ 1. pull + unpack, interleaved
    const ref = `${host}/bench/big:v1`;
    const mdockerPull = async () => {
      const data = join(dir, 'pull-data');
      rmSync(data, { recursive: true, force: true });
      const r = await must(
        'mdocker pull',
        runTimed(process.execPath, [cli, 'pull', ref], { env: { ...process.env, MDOCKER_DATA_DIR: data } }),
      );
      rmSync(data, { recursive: true, force: true });
      return { total: r.ms, cpuS: r.cpuS };
    };
    const peerPull = async () => {
      const layout = join(dir, 'peer-layout');
      const bundle = join(dir, 'peer-bundle');
      rmSync(layout, { recursive: true, force: true });
      rmSync(bundle, { recursive: true, force: true });
      const copy = await must(
        'skopeo copy from the registry',
        runTimed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]),
      );
      const unpack = await must('umoci unpack', runTimed('umoci', ['unpack', '--image', `${layout}:v1`, bundle]));
      rmSync(layout, { recursive: true, force: true });
      rmSync(bundle, { recursive: true, force: true });
      return { total: copy.ms + unpack.ms, copy: copy.ms, unpack: unpack.ms, cpuS: copy.cpuS + unpack.cpuS };
    };
    const samples = { mdocker: [], peer: [], copy: [], unpack: [], mdockerCpu: [], peerCpu: [] };
    await mdockerPull(); // warm-up: page cache of the registry's blobs, node's own start
    await peerPull();
    for (let i = 0; i < scale.pullRounds && Date.now() < deadlineAt - 120_000; i++) {
      const order = i % 2 === 0 ? ['mdocker', 'peer'] : ['peer', 'mdocker'];
      for (const which of order) {
        if (which === 'mdocker') {
          const m = await mdockerPull();
          samples.mdocker.push(m.total);
          samples.mdockerCpu.push(m.cpuS * 1000);
        } else {
          const p = await peerPull();
          samples.peer.push(p.total);
          samples.peerCpu.push(p.cpuS * 1000);
          samples.copy.push(p.copy);
          samples.unpack.push(p.unpack);
        }
      }
    }
    out.pull = {
      imageMiB: bigFiles,
      layers: BIG_LAYERS,
      mdocker: summarize(samples.mdocker),
      peer: summarize(samples.peer),
      skopeoCopy: summarize(samples.copy),
      umociUnpack: summarize(samples.unpack),
      mdockerCpu: summarize(samples.mdockerCpu),
      peerCpu: summarize(samples.peerCpu),
    };
    log(
      `  pull + unpack: mdocker p50 ${out.pull.mdocker.median.toFixed(0)} ms, skopeo + umoci p50 ${out.pull.peer.median.toFixed(0)} ms`,
    );

    // ------------------------------------------------ 2. start: 5 layers beside 1
    const base = busyboxTar(repo);
    const extra = (n) =>
      Buffer.concat([
        tarHeader('etc/', 0, '5'),
        tarHeader(`etc/layer-${n}`, 3, '0'),
        Buffer.from(`${n}\n`.padEnd(3, ' ')),
        Buffer.alloc(509),
        Buffer.alloc(1024),
      ]);
    // The same tree: busybox, then four small layers (one file each) or all in one.
    const stripEnd = (tar) => tar.subarray(0, tar.length - 1024);
    const trimmed = (tar) => {
      // GNU tar pads to a 10 KiB record: drop the zero blocks at the end.
      let end = tar.length;
      while (end >= 512 && tar.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
      return tar.subarray(0, end);
    };
    const baseBody = trimmed(base);
    const extras = [2, 3, 4, 5].map(extra);
    const single = Buffer.concat([baseBody, ...extras.map(stripEnd), Buffer.alloc(1024)]);
    writeLayout(join(dir, 'layers-5'), [Buffer.concat([baseBody, Buffer.alloc(1024)]), ...extras], {
      Cmd: ['/bin/true'],
    });
    writeLayout(join(dir, 'layers-1'), [single], { Cmd: ['/bin/true'] });
    const data = join(dir, 'start-data');
    rmSync(data, { recursive: true, force: true });
    const env = { ...process.env, MDOCKER_DATA_DIR: data };
    for (const n of [1, 5]) {
      const layout = join(dir, `layers-${n}`);
      // load names an image by its layout's ref name: tag each.
      const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
      index.manifests[0].annotations['org.opencontainers.image.ref.name'] = `bench.local/layers-${n}:v1`;
      writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
      await must(`mdocker load layers-${n}`, runTimed(process.execPath, [cli, 'load', '-i', layout], { env }));
    }
    process.env.MDOCKER_DATA_DIR = data;
    const dist = (p) => pathToFileURL(join(repo, 'server/dist/src', p)).href;
    const { Runtime } = await import(dist('runtime/containers.js'));
    runtime = await Runtime.open({ stateRoot: imagesRoot });
    const createToExit = async (image) => {
      const t0 = performance.now();
      const prepared = await runtime.create({
        image,
        tty: false,
        limits: { memoryBytes: 64 * MiB, cpus: 0.5, pidsLimit: 64 },
        cgroupParent,
        autoRemove: true,
        dieWithParent: true,
      });
      const id = prepared.record.id;
      const child = spawn(prepared.file, prepared.args, { stdio: ['ignore', 'ignore', 'pipe'], env: LAUNCHER_ENV });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const exit = new Promise((resolve) => child.on('close', (code) => resolve(code ?? 128)));
      const started = runtime.started(id, child.pid).catch(() => undefined);
      const code = await exit;
      clearTimeout(timer);
      await started;
      const { error } = await runtime.exited(id, code);
      const ms = performance.now() - t0;
      if (code !== 0)
        throw new Error(`create→exit of ${image}: exit ${code} ${error ? JSON.stringify(error) : stderr}`);
      return ms;
    };
    const images = { one: 'bench.local/layers-1:v1', five: 'bench.local/layers-5:v1' };
    for (let i = 0; i < 3; i++) for (const image of Object.values(images)) await createToExit(image);
    const starts = { one: [], five: [] };
    for (let i = 0; i < scale.startRounds && Date.now() < deadlineAt - 60_000; i++) {
      const order = i % 2 === 0 ? ['one', 'five'] : ['five', 'one'];
      for (const which of order) starts[which].push(await createToExit(images[which]));
    }
    out.start = { one: summarize(starts.one), five: summarize(starts.five) };
    log(
      `  create→exit: 1 layer p50 ${out.start.one.median.toFixed(2)} ms, 5 layers p50 ${out.start.five.median.toFixed(2)} ms`,
    );
  } finally {
    delete process.env.MDOCKER_DATA_DIR;
    if (registry) {
      registry.kill('SIGTERM');
      await new Promise((resolve) => (registry.exitCode !== null ? resolve() : registry.once('exit', resolve)));
    }
    for (const name of ['pull-data', 'peer-layout', 'peer-bundle', 'start-data', 'registry']) {
      rmSync(join(dir, name), { recursive: true, force: true });
    }
    const left = existsSync(imagesRoot) ? readdirSync(imagesRoot).filter((n) => /^[0-9a-f]{32}$/.test(n)) : [];
    if (left.length) out.leftovers.push(`containers left in ${imagesRoot}: ${left.join(', ')}`);
  }
  out.load.end = loadavg();
  return out;
}

const ms = (x, digits = 0) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : '–');

export function renderImages(r, versions = {}) {
  const L = [SECTION_HEADING, ''];
  if (!r || r.error) {
    L.push(`Not measured: ${r?.error ?? 'skipped'}.`, '');
    return L.join('\n');
  }
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '?');
  L.push(
    `\`node bench/run.mjs images\` (${versions.mdocker ?? ''}, ${r.at ?? ''}; ${r.versions?.skopeo ?? ''}, ${r.versions?.umoci ?? ''}, ${r.versions?.registry ?? ''}). Load average ${load(r.load.start)} at the start, ${load(r.load.end)} at the end, on 2 cores shared with other engineers' work.`,
    '',
  );
  if (r.pull) {
    const p = r.pull;
    const ratio = p.mdocker.median / p.peer.median;
    L.push(
      `### Pull + unpack of a ${p.imageMiB} MiB image from a registry on loopback (target: no slower than skopeo + umoci)`,
      '',
      `The image: ${p.layers} gzip layers of random bytes (incompressible: the registry sends about what is unpacked, ${((r.bigImage?.compressedBytes ?? 0) / MiB).toFixed(0)} MiB), ${r.bigImage?.files ?? '?'} files in all: in each layer 8 files of 2 MiB and the rest of its 25 MiB in files of 1-32 KiB, in directories of 100; made by the bench, pushed by skopeo to Debian's \`docker-registry\` on 127.0.0.1 (plain HTTP). Each round starts from nothing on both sides and the rounds alternate which goes first; one warm-up round each is not counted.`,
      '',
      '| | median | p90 | n |',
      '|---|---|---|---|',
      `| \`mdocker pull\` into an empty store (blobs verified and kept, each layer unpacked into its own directory; the whole CLI process) | **${ms(p.mdocker.median)}** | ${ms(p.mdocker.p90)} | ${p.mdocker.n} |`,
      `| \`skopeo copy docker://… oci:DIR\` + \`umoci unpack --image DIR BUNDLE\` | **${ms(p.peer.median)}** | ${ms(p.peer.p90)} | ${p.peer.n} |`,
      `| of which skopeo copy | ${ms(p.skopeoCopy.median)} | ${ms(p.skopeoCopy.p90)} | |`,
      `| of which umoci unpack (one rootfs, all layers applied, and its mtree manifest of every file) | ${ms(p.umociUnpack.median)} | ${ms(p.umociUnpack.p90)} | |`,
      `| **mdocker ÷ skopeo + umoci** | **${fmtRatio(ratio)}** | | ${ratio <= 1 ? 'met' : `missed: ${((ratio - 1) * 100).toFixed(0)} % slower`} |`,
      ...(p.mdockerCpu?.n
        ? [
            `| CPU time (user + system, GNU time): mdocker pull / skopeo + umoci | ${ms(p.mdockerCpu.median)} / ${ms(p.peerCpu.median)} (${fmtRatio(p.mdockerCpu.median / p.peerCpu.median)}) | ${ms(p.mdockerCpu.p90)} / ${ms(p.peerCpu.p90)} | |`,
          ]
        : []),
      '',
      "What it means: both sides do the same work in two steps. mdocker's pull fetches each blob to its store, checking its digest and size as it streams (as skopeo does into its OCI layout), then unpacks each layer from the stored blob into a directory of its own, three layers at once, applying the unpacker's confinement rules entry by entry; umoci applies all layers into one rootfs and then writes an mtree manifest of every file (which hashes them). mdocker's result is shared: a second image with the same layers unpacks nothing, and a container's start mounts the layers as they are. The spread between rounds is the load of the machine: compare the medians of the same run, not with another run's.",
      '',
    );
  }
  if (r.start) {
    const s = r.start;
    const diff = s.five.median - s.one.median;
    L.push(
      '### Start: a 5-layer image beside a 1-layer one',
      '',
      "The same tree both ways (the busybox image, then four layers adding one small file each, or all in one layer), loaded into a store of the bench's; `/bin/true`; the runtime in-process: `Runtime.create` → mdocker-init → exited (as section 1's `mdocker` row), interleaved, alternating which goes first. Each layer is one more idmapped mount and one more overlay lower.",
      '',
      '| | median | p90 | n |',
      '|---|---|---|---|',
      `| 1 layer | ${ms(s.one.median, 2)} | ${ms(s.one.p90, 2)} | ${s.one.n} |`,
      `| 5 layers | ${ms(s.five.median, 2)} | ${ms(s.five.p90, 2)} | ${s.five.n} |`,
      `| **difference** | **${diff >= 0 ? '+' : ''}${diff.toFixed(2)} ms** (${diff >= 0 ? '+' : ''}${(diff / 4).toFixed(2)} ms a layer) | ${(s.five.p90 - s.one.p90).toFixed(2)} ms | |`,
      '',
      'What it means: a layer costs the launcher an `open_tree` clone, a `mount_setattr` to idmap it and a `move_mount` under the layer, and overlayfs one more lower to look through on a miss; the runtime reads nothing per layer. Four more layers are a small part of a start.',
      '',
    );
  }
  return L.join('\n');
}

export function withImagesSection(markdown, section) {
  return withSection(markdown, SECTION_HEADING, section);
}
