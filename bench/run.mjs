#!/usr/bin/env node
// `npm run bench`: mdocker side by side with its peers (issue 6), in one run, on this
// machine. Installs what is missing (crun, runc, bubblewrap from Debian; wetty from npm
// into bench/work), builds what is missing, measures, writes bench/RESULTS.md, and checks
// that nothing it made is left.
//
//   BENCH_SCALE=full|quick   full (default) writes bench/RESULTS.md; quick is a smoke run
//                            that writes bench/work/RESULTS-quick.md
//   BENCH_MAX_MINUTES=N      overall budget (default 15 full, 5 quick); phases shrink to fit
//   BENCH_OUT=PATH           where to write the markdown instead
//   BENCH_ONLY=a,b           run only these phases: native, start, warm, echo, wetty, throughput, classroom,
//                            networks, images, cluster, density; or name them as arguments: `node bench/run.mjs classroom`
//   BENCH_CLASSROOM_PAGE=worktree  the classroom's teacher console built from the working tree (default: HEAD)
//
//   node bench/run.mjs --render [RESULTS.json]   rewrites the markdown from the raw numbers
//       (default bench/work/results.json, the last run) with the current bench/PROFILE.md,
//       measuring nothing
//
// A run of only the classroom or the networks (`node bench/run.mjs classroom`, `... networks`)
// replaces its own sections of the markdown and leaves the rest as the last full run wrote it.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandOutput, hostBusyPercent, hostCpu, loadavg, sleep, summarize, withTimeout } from './lib/util.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(repo, 'bench');
const work = join(benchDir, 'work');

const SCALES = {
  full: {
    maxMinutes: 15,
    nativeRounds: 200,
    nativeWarmup: 3,
    sequential: 200,
    classSize: 30,
    bursts: 5,
    echoSamples: 300,
    noisy: 50,
    throughputBytes: 256 * 1024 * 1024,
    throughputRounds: 3,
    wettyStarts: 50,
    density: 1000,
    checkpoints: [10, 100, 1000],
    cpuWindowMs: 10_000,
    classroomStudents: 60,
    classroomWindowMs: 30_000,
    classroomRounds: 2,
    networks: {
      startRounds: 100,
      tcpBytes: 200 * 1024 * 1024,
      tcpRounds: 3,
      pingCount: 20,
      httpRequests: 200,
      wgetRounds: 3,
      bigBytes: 50 * 1024 * 1024,
      bigRepeat: 4,
      bigRounds: 3,
    },
    images: { pullRounds: 5, startRounds: 100 },
  },
  quick: {
    maxMinutes: 5,
    nativeRounds: 10,
    nativeWarmup: 1,
    sequential: 20,
    classSize: 10,
    bursts: 1,
    echoSamples: 30,
    noisy: 5,
    throughputBytes: 16 * 1024 * 1024,
    throughputRounds: 1,
    wettyStarts: 5,
    density: 50,
    checkpoints: [10, 50],
    cpuWindowMs: 3000,
    classroomStudents: 10,
    classroomWindowMs: 5000,
    classroomRounds: 1,
    networks: {
      startRounds: 10,
      tcpBytes: 16 * 1024 * 1024,
      tcpRounds: 1,
      pingCount: 5,
      httpRequests: 20,
      wgetRounds: 1,
      bigBytes: 8 * 1024 * 1024,
      bigRepeat: 1,
      bigRounds: 1,
    },
    images: { pullRounds: 1, startRounds: 10 },
  },
};

const scaleName = process.env.BENCH_SCALE ?? 'full';
const S = SCALES[scaleName];
if (!S) {
  console.error(`bench: BENCH_SCALE must be one of ${Object.keys(SCALES).join(', ')}`);
  process.exit(2);
}
const phaseArgs = process.argv.slice(2).filter((arg) => /^[a-z]+$/.test(arg));
const onlyList = phaseArgs.length ? phaseArgs : process.env.BENCH_ONLY?.split(',');
const only = onlyList ? new Set(onlyList) : null;
// Phases with a section of their own, which a run of only them replaces in place.
const SECTION_PHASES = ['classroom', 'networks', 'images', 'cluster'];
const onlySections = only !== null && [...only].every((name) => SECTION_PHASES.includes(name));
const wanted = (phase) => only === null || only.has(phase);
const maxMinutes = Number(process.env.BENCH_MAX_MINUTES ?? S.maxMinutes);
const startedAt = Date.now();
const deadlineAt = startedAt + maxMinutes * 60_000;
const outPath =
  process.env.BENCH_OUT ?? (scaleName === 'full' ? join(benchDir, 'RESULTS.md') : join(work, 'RESULTS-quick.md'));
const runId = `${process.pid}`;
const stateRoot = `/run/mdocker-bench-${runId}`;
const cgroupParent = `/mdocker-bench-${runId}`;
const NOISY_COMMAND = 'yes';

if (process.argv.includes('--render')) {
  const from = process.argv[process.argv.indexOf('--render') + 1] ?? join(work, 'results.json');
  const last = JSON.parse(readFileSync(from, 'utf8'));
  const notes = join(benchDir, 'PROFILE.md');
  last.profileNotes = existsSync(notes) ? readFileSync(notes, 'utf8').replace(/^# .*\n+/, '') : null;
  const target =
    process.env.BENCH_OUT ?? (last.scale === 'full' ? join(benchDir, 'RESULTS.md') : join(work, 'RESULTS-quick.md'));
  const { renderResults } = await import('./lib/report.mjs');
  const { renderClassroom, withClassroomSection } = await import('./lib/classroom.mjs');
  const { renderNetworks, withNetworksSection } = await import('./lib/networks.mjs');
  let markdown = renderResults(last);
  if (last.classroom) markdown = withClassroomSection(markdown, renderClassroom(last.classroom, last.versions));
  if (last.networks) markdown = withNetworksSection(markdown, renderNetworks(last.networks, last.versions));
  if (last.images) {
    const { renderImages, withImagesSection } = await import('./lib/images.mjs');
    markdown = withImagesSection(markdown, renderImages(last.images, last.versions));
  }
  if (last.cluster) {
    const { renderCluster, withClusterSection } = await import('./lib/cluster.mjs');
    markdown = withClusterSection(markdown, renderCluster(last.cluster, last.versions));
  }
  writeFileSync(target, markdown);
  console.log(`bench: wrote ${target} from ${from} (${last.scale} run of ${last.startedAt})`);
  process.exit(0);
}

const log = (...args) => console.log(`[bench +${((Date.now() - startedAt) / 1000).toFixed(0)}s]`, ...args);

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (namespaces, cgroups, mounts, apt-get); run it as root');
  process.exit(1);
}
mkdirSync(work, { recursive: true });

const { Tracker } = await import('./lib/tracker.mjs');
const tracker = new Tracker();
tracker.stateRoots.push(
  stateRoot,
  `${stateRoot}-serve`,
  `${stateRoot}-warm`,
  `${stateRoot}-density`,
  `${stateRoot}-net`,
  `${stateRoot}-preview`,
  `${stateRoot}-images`,
  `${stateRoot}-gnu`,
);
tracker.cgroupParents.push(cgroupParent);
tracker.mountPrefixes.push(work, stateRoot);

// ---------------------------------------------------------------- setup

function run(file, args, opts = {}) {
  log(`$ ${file} ${args.join(' ')}`);
  const r = spawnSync(file, args, { stdio: 'inherit', cwd: repo, timeout: 15 * 60_000, ...opts });
  return r.status === 0;
}

function ensureDebianPackages() {
  const need = [
    ['crun', '/usr/bin/crun'],
    ['runc', '/usr/sbin/runc'],
    ['bubblewrap', '/usr/bin/bwrap'],
    ['gcc', '/usr/bin/gcc'],
    ['util-linux', '/usr/bin/unshare'],
  ].filter(([, path]) => !existsSync(path));
  if (need.length === 0) return;
  const names = need.map(([name]) => name);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  if (!install()) {
    run('apt-get', ['update', '-qq'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (!install()) log(`could not install ${names.join(' ')}: their rows will say so`);
  }
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt() {
  const launcher = join(repo, 'native/build/Release/mdocker-init');
  if (!existsSync(join(repo, 'server/dist/src/cli/main.js'))) run('npx', ['tsc', '-p', 'server']);
  if (!existsSync(launcher) || !existsSync(join(repo, 'native/build/Release/mdocker_native.node')))
    run('npx', ['node-gyp', 'rebuild', '--directory', 'native']);
  if (!existsSync(join(repo, 'rootfs/images/busybox/.mdocker-image'))) run('bash', ['rootfs/build.sh', 'busybox']);
  // Measure what is built; say so when the sources moved on (the launcher's owner may be
  // mid-change: rebuilding their half-done work is not ours to do).
  const stale = [];
  if (existsSync(launcher) && newestMtime(join(repo, 'native/src/launcher')) > statSync(launcher).mtimeMs)
    stale.push('native/src/launcher is newer than the built launcher');
  const addon = join(repo, 'native/build/Release/mdocker_native.node');
  if (existsSync(addon) && newestMtime(join(repo, 'native/src/addon')) > statSync(addon).mtimeMs)
    stale.push('native/src/addon is newer than the built addon');
  const tsbuild = join(repo, 'server/dist/.tsbuildinfo');
  if (existsSync(tsbuild) && newestMtime(join(repo, 'server/src')) > statSync(tsbuild).mtimeMs)
    stale.push('server/src is newer than server/dist');
  return stale.join('; ');
}

function ensureHelpers() {
  const floor = join(work, 'floor');
  const src = join(benchDir, 'floor.c');
  if (!existsSync(floor) || statSync(floor).mtimeMs < statSync(src).mtimeMs) {
    if (!run('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', floor, src]))
      throw new Error('cannot build bench/floor.c');
  }
  // The OCI peers, bwrap and the floor get a copy of the image (bwrap binds it read-write).
  const image = join(repo, 'rootfs/images/busybox');
  const copy = join(work, 'rootfs-busybox');
  const marker = '.mdocker-image';
  const same =
    existsSync(join(copy, marker)) &&
    readFileSync(join(copy, marker), 'utf8') === readFileSync(join(image, marker), 'utf8');
  if (!same) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(image, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  }
}

async function ensureWetty() {
  if (existsSync(join(work, 'node_modules/wetty/build/main.js'))) return 'installed';
  log('installing wetty into bench/work (npm)');
  const ok = run('npm', ['install', '--prefix', work, 'wetty@3', '--no-audit', '--no-fund', '--loglevel', 'error'], {
    timeout: 5 * 60_000,
  });
  if (!ok || !existsSync(join(work, 'node_modules/wetty/build/main.js')))
    return 'npm install --prefix bench/work wetty@3 failed (offline, or the registry refused)';
  return 'installed';
}

function versions(stale) {
  const first = (s) => (s === null ? null : s.split('\n')[0].trim());
  const git = commandOutput('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']);
  // Other engineers work in this tree: say when what was measured is not the commit.
  const dirtyFiles = (
    commandOutput('git', ['-C', repo, 'status', '--porcelain', '--', 'server/src', 'native/src']) ?? ''
  )
    .split('\n')
    .filter(Boolean);
  const launcher = join(repo, 'native/build/Release/mdocker-init');
  const busyboxLine = commandOutput(join(repo, 'rootfs/images/busybox/bin/busybox'), ['--help']);
  return {
    kernel: commandOutput('uname', ['-r']),
    node: process.version,
    crun: first(commandOutput('crun', ['--version'])),
    runc: first(commandOutput('runc', ['--version'])),
    bwrap: first(commandOutput('bwrap', ['--version'])),
    mdocker: `commit ${git ?? '?'}`,
    launcherBuilt: existsSync(launcher) ? new Date(statSync(launcher).mtimeMs).toISOString() : 'missing',
    stale,
    dirty: dirtyFiles.length
      ? `${dirtyFiles.length} uncommitted change${dirtyFiles.length === 1 ? '' : 's'} in server/src and native/src`
      : '',
    busybox: busyboxLine ? first(busyboxLine) : null,
  };
}

function machine() {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  const v1 = [...mounts.matchAll(/ - cgroup cgroup \S*?,([a-z_,=]+)$/gm)].map((m) => m[1]).join(' ');
  const v2 = / - cgroup2 /.test(mounts) ? ' + cgroup2 at ' + (/ (\S+) \S+ - cgroup2 /m.exec(mounts)?.[1] ?? '?') : '';
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? '?',
    memTotal: totalmem(),
    cgroups: `v1 (${v1})${v2}`,
  };
}

// ---------------------------------------------------------------- phases

const results = {
  scale: scaleName,
  startedAt: new Date(startedAt).toISOString(),
  config: { ...S, noisyCommand: NOISY_COMMAND, throughputScriptShown: '' },
  load: { start: loadavg() },
  leftovers: [],
};
const phaseLog = [];

function budget(ms) {
  // Leave room for the phases after this one and for the cleanup.
  return Math.min(Date.now() + ms, deadlineAt - 30_000);
}

async function phase(name, fn) {
  if (!wanted(name)) return;
  if (Date.now() > deadlineAt - 30_000) {
    log(`skipping ${name}: out of time`);
    phaseLog.push({ name, skipped: 'out of time' });
    return;
  }
  const cpu0 = hostCpu();
  const t0 = Date.now();
  log(`phase ${name}`);
  try {
    await fn();
  } catch (err) {
    log(`phase ${name} failed: ${err.stack ?? err}`);
    phaseLog.push({ name, error: String(err.message ?? err) });
    results[`${name}Error`] = String(err.message ?? err);
  }
  phaseLog.push({
    name,
    seconds: (Date.now() - t0) / 1000,
    hostBusyPercent: hostBusyPercent(cpu0, hostCpu()),
    load: loadavg(),
  });
}

async function nativePhase() {
  const outFile = join(work, 'native-results.json');
  rmSync(outFile, { force: true });
  const cfgFile = join(work, 'native-config.json');
  const phaseDeadline = budget(S.maxMinutes * 60_000 * 0.3);
  writeFileSync(
    cfgFile,
    JSON.stringify({
      repo,
      work,
      stateRoot,
      cgroupParent,
      rounds: S.nativeRounds,
      warmup: S.nativeWarmup,
      deadlineAt: phaseDeadline,
      outFile,
    }),
  );
  // The harness, not the product, shells out here: a private mount namespace where the
  // near-empty cgroup2 is covered, so that crun runs; every peer is timed inside it.
  const child = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      'if mountpoint -q /sys/fs/cgroup/unified; then mount -t tmpfs -o mode=0555 mdocker-bench-hide-cgroup2 /sys/fs/cgroup/unified || exit 1; fi; exec "$0" "$@"',
      process.execPath,
      join(benchDir, 'lib/native.mjs'),
      cfgFile,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  tracker.add(child.pid, 'native block');
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let status;
  try {
    status = await withTimeout(exited, phaseDeadline - Date.now() + 90_000, 'native block');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  if (!existsSync(outFile)) throw new Error(`the native block wrote no results (exit ${JSON.stringify(status)})`);
  const native = JSON.parse(readFileSync(outFile, 'utf8'));
  native.warmup = S.nativeWarmup;
  native.summary = {};
  native.parts = {};
  for (const [name, p] of Object.entries(native.peers)) {
    native.summary[name] = summarize(p.samples);
    native.parts[name] = Object.fromEntries(Object.entries(p.parts).map(([k, v]) => [k, summarize(v)]));
  }
  for (const l of native.leftovers) results.leftovers.push(`native block: ${l}`);
  for (const l of native.stateLeft) results.leftovers.push(`native block state: ${l}`);
  results.native = native;
  for (const [name, s] of Object.entries(native.summary))
    log(
      `  ${name.padEnd(24)} median ${s.median?.toFixed(2)} ms  n=${s.n}${native.peers[name].lastError ? `  last error: ${native.peers[name].lastError.slice(0, 120)}` : ''}`,
    );
}

const { startMdockerServer, uncappedFlags } = await import('./lib/server.mjs');
const pgLib = await import('./lib/playground.mjs');
const wettyLib = await import('./lib/wetty.mjs');
results.config.throughputScriptShown = pgLib.throughputScript(S.throughputBytes);
results.playground = {};
results.wetty = {};

let server = null;
async function ensureServer() {
  if (server) return server;
  server = await startMdockerServer({
    repo,
    logFile: join(work, 'serve.log'),
    stateRoot: `${stateRoot}-serve`,
    extraArgs: uncappedFlags(),
    tracker,
  });
  tracker.noteServer(server.pid);
  log(`  mdocker serve pid ${server.pid} at ${server.url.href}`);
  return server;
}
async function stopServer() {
  if (!server) return;
  const s = server;
  server = null;
  const r = await s.stop();
  if (r.timedOut) results.leftovers.push('mdocker serve did not stop in time after SIGTERM: killed');
}

async function startPhase() {
  const srv = await ensureServer();
  results.playground.sequential = await pgLib.measureStartSequential({
    server: srv,
    count: S.sequential,
    deadlineAt: budget(150_000),
    tracker,
  });
  log(
    `  sequential create→prompt p50 ${results.playground.sequential.prompt.median?.toFixed(1)} ms p99 ${results.playground.sequential.prompt.p99?.toFixed(1)} ms`,
  );
  results.playground.concurrent = await pgLib.measureStartConcurrent({
    server: srv,
    classSize: S.classSize,
    bursts: S.bursts,
    deadlineAt: budget(120_000),
    tracker,
  });
  log(
    `  ${S.classSize} at once create→prompt p50 ${results.playground.concurrent.prompt.median?.toFixed(1)} ms p99 ${results.playground.concurrent.prompt.p99?.toFixed(1)} ms`,
  );
}

/**
 * The same clicks against a server with a warm pool the size of the class
 * (`--warm-pool`): the default container is started before anyone asks. `ready` waits
 * until the pool is full (its containers are the only state dirs left).
 */
async function warmStartPhase() {
  const warmRoot = `${stateRoot}-warm`;
  const pool = S.classSize;
  const warm = await startMdockerServer({
    repo,
    logFile: join(work, 'serve-warm.log'),
    stateRoot: warmRoot,
    extraArgs: [...uncappedFlags(), '--warm-pool', String(pool)],
    tracker,
  });
  tracker.noteServer(warm.pid);
  log(`  mdocker serve --warm-pool ${pool}: pid ${warm.pid}`);
  const ready = async () => {
    const deadline = Date.now() + 120_000;
    const count = () =>
      existsSync(warmRoot) ? readdirSync(warmRoot).filter((name) => /^[0-9a-f]{32}$/.test(name)).length : 0;
    while (count() < pool) {
      if (Date.now() > deadline) throw new Error(`the warm pool did not refill to ${pool}`);
      await sleep(20);
    }
  };
  try {
    results.playground.warmSequential = await pgLib.measureStartSequential({
      server: warm,
      count: S.sequential,
      deadlineAt: budget(150_000),
      tracker,
      ready,
    });
    log(
      `  warm pool, sequential create→prompt p50 ${results.playground.warmSequential.prompt.median?.toFixed(1)} ms p99 ${results.playground.warmSequential.prompt.p99?.toFixed(1)} ms`,
    );
    results.playground.warmConcurrent = await pgLib.measureStartConcurrent({
      server: warm,
      classSize: S.classSize,
      bursts: S.bursts,
      deadlineAt: budget(120_000),
      tracker,
      ready,
    });
    results.playground.warmPool = pool;
    log(
      `  warm pool, ${S.classSize} at once create→prompt p50 ${results.playground.warmConcurrent.prompt.median?.toFixed(1)} ms p99 ${results.playground.warmConcurrent.prompt.p99?.toFixed(1)} ms`,
    );
  } finally {
    const r = await warm.stop();
    if (r.timedOut) results.leftovers.push('mdocker serve --warm-pool did not stop in time after SIGTERM: killed');
  }
}

async function echoPhase() {
  const srv = await ensureServer();
  results.playground.echo = await pgLib.measureEcho({
    server: srv,
    samples: S.echoSamples,
    noisyCount: S.noisy,
    noisyCommand: NOISY_COMMAND,
    deadlineAt: budget(150_000),
    tracker,
  });
  log(
    `  echo idle p99 ${results.playground.echo.idle.p99?.toFixed(2)} ms, with ${results.playground.echo.noisyCount} noisy p99 ${results.playground.echo.noisy.p99?.toFixed(2)} ms`,
  );
}

async function wettyPhase() {
  if (results.wettyStatus !== 'installed') {
    results.wetty.skipped = results.wettyStatus;
    return;
  }
  const shell = await wettyLib.startWetty({ work, command: 'sh', logFile: join(work, 'wetty-sh.log'), tracker });
  if (shell.skipped) {
    results.wetty.skipped = shell.skipped;
    return;
  }
  try {
    results.wetty.start = await wettyLib.measureWettyStart(shell, S.wettyStarts, budget(60_000));
    results.wetty.echo = await wettyLib.measureWettyEcho(shell, S.echoSamples, budget(60_000));
    log(
      `  wetty start p50 ${results.wetty.start.median?.toFixed(1)} ms, echo p50 ${results.wetty.echo.median?.toFixed(2)} ms`,
    );
  } finally {
    await shell.stop();
  }
}

/**
 * The throughput command four ways, and the pty's own ceiling for it. The container runs
 * the image's busybox; wetty's shell gets the same binaries (PATH = the image's /bin) for
 * the like-for-like ratio, and the host's coreutils as before (GNU head writes whole
 * buffers to a tty, busybox head a line per write(2): the writer's kernel time differs
 * 4×). mdocker runs once with the playground's default limits and once with a CPU limit
 * of every core, as wetty's host shell has none.
 */
/**
 * The run of `runs` with the median rate, told of every round's rate: the phase repeats
 * the bare reader, mdocker and wetty in turn, so a spell of foreign load on this shared
 * machine lands on one round of each rather than on one of them.
 */
function medianRun(runs) {
  const measured = runs.filter((run) => Number.isFinite(run?.MiBps)).sort((a, b) => a.MiBps - b.MiBps);
  if (measured.length === 0) return runs.at(-1);
  return { ...measured[Math.floor((measured.length - 1) / 2)], roundsMiBps: runs.map((run) => run?.MiBps ?? null) };
}

/**
 * The like-for-like run with GNU binaries: a server of its own whose images directory adds
 * `gnu` (bench/lib/gnu-image.mjs), no CPU limit, as wetty's host shell has none.
 */
async function gnuThroughput(imagesDir, script, timeoutMs) {
  const srv = await startMdockerServer({
    repo,
    logFile: join(work, 'serve-gnu.log'),
    stateRoot: `${stateRoot}-gnu`,
    extraArgs: uncappedFlags(),
    env: { MDOCKER_IMAGES: imagesDir },
    tracker,
  });
  tracker.noteServer(srv.pid);
  try {
    const cpus = availableParallelism();
    const run = await pgLib.measureThroughput({
      server: srv,
      bytes: S.throughputBytes,
      timeoutMs,
      tracker,
      cpus,
      image: 'gnu',
      script,
    });
    run.cpus = cpus;
    log(
      `  mdocker, GNU yes and head (cpus ${cpus}) ${run.MiBps.toFixed(1)} MiB/s, ${run.serverCpuSecondsPerGiB.toFixed(1)} server CPU s/GiB`,
    );
    return run;
  } catch (err) {
    return { error: String(err.message ?? err) };
  } finally {
    const r = await srv.stop();
    if (r.timedOut) results.leftovers.push('the GNU throughput server did not stop in time after SIGTERM: killed');
  }
}

async function throughputPhase() {
  const script = pgLib.throughputScript(S.throughputBytes);
  const imageBin = join(repo, 'rootfs/images/busybox/bin');
  const hostPath = '/usr/local/bin:/usr/bin:/bin';
  const { buildGnuImages, gnuScript } = await import('./lib/gnu-image.mjs');
  const gnuImages = buildGnuImages({ repo, work });
  if (gnuImages.skipped) log(`  mdocker with GNU yes and head: not measured: ${gnuImages.skipped}`);
  const perRun = 2 + 2 + (gnuImages.dir ? 1 : 0) + 2 * (results.wettyStatus === 'installed' ? 1 : 0);
  const timeoutMs = () =>
    Math.max(60_000, Math.min(240_000, (deadlineAt - Date.now() - 120_000) / (perRun * S.throughputRounds)));
  const { measurePtyCeiling } = await import('./lib/pty-ceiling.mjs');
  const runs = {};
  const add = (group, key, run) => ((runs[group] ??= {})[key] ??= []).push(run);
  for (let round = 1; round <= S.throughputRounds; round++) {
    log(`  round ${round} of ${S.throughputRounds}`);
    // Each set's own `time` (busybox's would run its own head applet whatever PATH says).
    for (const [name, path, timeHead] of [
      ['busybox', imageBin, `${imageBin}/busybox time`],
      ['host', hostPath, existsSync('/usr/bin/time') ? '/usr/bin/time' : ''],
    ]) {
      const run = await measurePtyCeiling({
        repo,
        script: pgLib.throughputScript(S.throughputBytes, { timeHead }),
        path,
        timeoutMs: timeoutMs(),
      }).catch((err) => ({
        error: String(err.message ?? err),
      }));
      add('ptyCeiling', name, run);
      log(
        `  pty ceiling (${name}) ${run.MiBps?.toFixed(1)} MiB/s; the writer alone ${run.writerLimitMiBps?.toFixed(1)} MiB/s`,
      );
    }
    const srv = await ensureServer();
    for (const [key, cpus] of [
      ['throughput', undefined],
      ['throughputAllCpus', availableParallelism()],
    ]) {
      let run;
      try {
        run = await pgLib.measureThroughput({
          server: srv,
          bytes: S.throughputBytes,
          timeoutMs: timeoutMs(),
          tracker,
          cpus,
        });
        run.cpus = cpus ?? null;
        log(
          `  mdocker (cpus ${cpus ?? 'default'}) ${run.MiBps.toFixed(1)} MiB/s, ${run.serverCpuSecondsPerGiB.toFixed(1)} server CPU s/GiB`,
        );
      } catch (err) {
        run = { error: String(err.message ?? err) };
      }
      add('mdocker', key, run);
    }
    await stopServer();
    if (gnuImages.dir)
      add('mdocker', 'throughputGnu', await gnuThroughput(gnuImages.dir, gnuScript(script), timeoutMs()));
    else add('mdocker', 'throughputGnu', { skipped: gnuImages.skipped });
    for (const [key, command] of [
      ['throughput', `${imageBin}/sh -c 'PATH=${imageBin}; ${script}'`],
      ['throughputHost', `sh -c '${script}'`],
    ]) {
      if (results.wettyStatus !== 'installed') {
        add('wetty', key, { skipped: results.wettyStatus });
        continue;
      }
      const w = await wettyLib.startWetty({ work, command, logFile: join(work, `wetty-${key}.log`), tracker });
      if (w.skipped) {
        add('wetty', key, { skipped: w.skipped });
        continue;
      }
      try {
        const run = await wettyLib.measureWettyThroughput(w, timeoutMs());
        add('wetty', key, run);
        log(
          `  wetty (${key}) ${run.MiBps.toFixed(1)} MiB/s, ${run.serverCpuSecondsPerGiB.toFixed(1)} server CPU s/GiB`,
        );
      } finally {
        await w.stop();
      }
    }
  }
  if (gnuImages.dir) rmSync(gnuImages.dir, { recursive: true, force: true });
  results.ptyCeiling = {};
  for (const [name, list] of Object.entries(runs.ptyCeiling ?? {})) results.ptyCeiling[name] = medianRun(list);
  for (const [key, list] of Object.entries(runs.mdocker ?? {})) results[key] = medianRun(list);
  for (const [key, list] of Object.entries(runs.wetty ?? {})) results.wetty[key] = medianRun(list);
  results.config.throughputRounds = S.throughputRounds;
}

async function densityPhase() {
  await stopServer();
  const srv = await startMdockerServer({
    repo,
    logFile: join(work, 'serve-density.log'),
    stateRoot: `${stateRoot}-density`,
    extraArgs: uncappedFlags({ maxContainers: S.density + 100 }),
    tracker,
  });
  tracker.noteServer(srv.pid);
  try {
    // Leave time for the 1 Hz windows and for removing them all.
    const d = await pgLib.measureDensity({
      server: srv,
      target: S.density,
      checkpoints: S.checkpoints,
      windowMs: S.cpuWindowMs,
      deadlineAt: Math.min(budget(600_000), deadlineAt - 90_000),
      tracker,
      log,
    });
    delete d.containerIds;
    results.density = d;
    log(
      `  ${d.count} containers; ${(d.memory.cgroupPerContainer / 1048576).toFixed(2)} MiB each on the host; idle CPU ${JSON.stringify(Object.fromEntries(Object.entries(d.idleCpu).map(([k, v]) => [k, v.toFixed(1)])))}`,
    );
  } finally {
    const t0 = Date.now();
    const r = await srv.stop(200_000);
    if (results.density) results.density.shutdownSeconds = (Date.now() - t0) / 1000;
    if (r.timedOut) results.leftovers.push('the density server did not stop in time after SIGTERM: killed');
  }
}

/** issue 18: a class of students typing, with and without the teacher watching (bench/lib/classroom.mjs). */
async function classroomPhase() {
  await stopServer();
  const { measureClassroom } = await import('./lib/classroom.mjs');
  results.classroom = await measureClassroom({
    repo,
    work,
    stateRoot: `${stateRoot}-classroom`,
    students: S.classroomStudents,
    windowMs: S.classroomWindowMs,
    rounds: S.classroomRounds,
    pageSource: process.env.BENCH_CLASSROOM_PAGE === 'worktree' ? 'worktree' : 'HEAD',
    tracker,
    log,
  });
  for (const l of results.classroom.leftovers) results.leftovers.push(`classroom: ${l}`);
}

/** issue 14: start with a network, container↔container, previews (bench/lib/networks.mjs). */
async function networksPhase() {
  await stopServer();
  const { measureNetworks } = await import('./lib/networks.mjs');
  results.networks = await measureNetworks({
    repo,
    work,
    stateRoot,
    cgroupParent,
    scale: S.networks,
    tracker,
    log,
    deadlineAt: budget(600_000),
  });
  results.networks.at = new Date().toISOString();
  for (const l of results.networks.leftovers) results.leftovers.push(`networks: ${l}`);
  if (results.networks.preview?.leftover) results.leftovers.push(`networks: ${results.networks.preview.leftover}`);
}

/** issue 15: pull + unpack beside skopeo + umoci, a 5-layer start beside a 1-layer one (bench/lib/images.mjs). */
async function imagesPhase() {
  await stopServer();
  const { measureImages } = await import('./lib/images.mjs');
  results.images = await measureImages({
    repo,
    work,
    stateRoot,
    cgroupParent,
    scale: S.images,
    log,
    deadlineAt: budget(900_000),
  });
  results.images.at = new Date().toISOString();
  for (const l of results.images.leftovers) results.leftovers.push(`images: ${l}`);
}

// Three nodes behind HAProxy beside one node direct (issue 17): bench/lib/cluster.mjs.
async function clusterPhase() {
  await stopServer();
  const { measureCluster } = await import('./lib/cluster.mjs');
  const quick = scaleName !== 'full';
  results.cluster = await measureCluster({
    repo,
    log,
    rounds: quick ? 2 : 3,
    prompts: quick ? 6 : 150,
    students: quick ? 10 : 20,
  });
  results.cluster.at = new Date().toISOString();
  results.cluster.haproxyVersion = (commandOutput('haproxy', ['-v']) ?? '')
    .split('\n')[0]
    .replace(/^HAProxy version (\S+).*/, '$1');
  for (const l of results.cluster.leftovers) results.leftovers.push(`cluster: ${l}`);
}

// ---------------------------------------------------------------- main

let finishing = false;
async function finish(exitCode) {
  if (finishing) return;
  finishing = true;
  try {
    await stopServer();
  } catch {
    // verify() below kills what is left
  }
  const left = await tracker.verify();
  results.leftovers.push(...left);
  if (results.leftovers.length === 0)
    log('cleanup: verified, nothing left (processes, containers, cgroups, state, mounts)');
  else for (const l of results.leftovers) log(`cleanup: LEFT OVER: ${l}`);
  return exitCode;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    log(`${signal}: cleaning up`);
    await finish(130);
    process.exit(130);
  });
}
// A hard stop if something hangs past the budget: clean up and leave.
setTimeout(
  async () => {
    log('over the time budget by 5 minutes: stopping');
    await finish(1);
    process.exit(1);
  },
  deadlineAt - Date.now() + 5 * 60_000,
).unref();

const hostCpu0 = hostCpu();
ensureDebianPackages();
const stale = ensureBuilt();
ensureHelpers();
results.wettyStatus = wanted('wetty') || wanted('throughput') ? await ensureWetty() : 'not requested';
results.versions = { ...versions(stale), wetty: wettyLib.wettyVersion(work) };
results.machine = machine();
log(
  `scale ${scaleName}, budget ${maxMinutes} min; ${results.machine.nproc} CPUs, kernel ${results.versions.kernel}; load ${results.load.start.join(' ')}`,
);
if (stale) log(`warning: ${stale}`);

await phase('native', nativePhase);
await phase('start', startPhase);
await phase('warm', warmStartPhase);
await phase('echo', echoPhase);
await phase('wetty', wettyPhase);
await phase('throughput', throughputPhase);
await phase('classroom', classroomPhase);
await phase('networks', networksPhase);
await phase('images', imagesPhase);
await phase('cluster', clusterPhase);
await phase('density', densityPhase);

await finish(0);
results.load.end = loadavg();
results.load.hostBusyPercent = hostBusyPercent(hostCpu0, hostCpu());
results.durationS = (Date.now() - startedAt) / 1000;
results.phases = phaseLog;
const notes = join(benchDir, 'PROFILE.md');
results.profileNotes = existsSync(notes) ? readFileSync(notes, 'utf8').replace(/^# .*\n+/, '') : null;
const rawPath = join(work, 'results.json');
// Alone, the classroom and the networks go into the last run's raw numbers (of the same scale), as into its markdown.
const lastRun = onlySections && existsSync(rawPath) ? JSON.parse(readFileSync(rawPath, 'utf8')) : null;
const sectionsOnly = Object.fromEntries(
  SECTION_PHASES.filter((name) => results[name]).map((name) => [name, results[name]]),
);
writeFileSync(
  rawPath,
  JSON.stringify(lastRun?.scale === results.scale ? { ...lastRun, ...sectionsOnly } : results, null, 1),
);
const { renderResults } = await import('./lib/report.mjs');
// Alone, these phases replace their sections of what the last full run wrote.
let markdown = onlySections && existsSync(outPath) ? readFileSync(outPath, 'utf8') : renderResults(results);
if (results.classroom || (onlySections && wanted('classroom'))) {
  const { renderClassroom, withClassroomSection } = await import('./lib/classroom.mjs');
  const classroom = results.classroom ?? { error: results.classroomError ?? 'skipped' };
  writeFileSync(join(work, 'classroom.json'), JSON.stringify(classroom, null, 1));
  markdown = withClassroomSection(markdown, renderClassroom(classroom, results.versions));
}
if (results.networks || (onlySections && wanted('networks'))) {
  const { renderNetworks, withNetworksSection } = await import('./lib/networks.mjs');
  const networks = results.networks ?? { error: phaseLog.find((p) => p.name === 'networks')?.error ?? 'skipped' };
  writeFileSync(join(work, 'networks.json'), JSON.stringify(networks, null, 1));
  markdown = withNetworksSection(markdown, renderNetworks(networks, results.versions));
}
if (results.images || (onlySections && wanted('images'))) {
  const { renderImages, withImagesSection } = await import('./lib/images.mjs');
  const images = results.images ?? { error: phaseLog.find((p) => p.name === 'images')?.error ?? 'skipped' };
  writeFileSync(join(work, 'images.json'), JSON.stringify(images, null, 1));
  markdown = withImagesSection(markdown, renderImages(images, results.versions));
}
if (results.cluster || (onlySections && wanted('cluster'))) {
  const { renderCluster, withClusterSection } = await import('./lib/cluster.mjs');
  const cluster = results.cluster ?? { error: phaseLog.find((p) => p.name === 'cluster')?.error ?? 'skipped' };
  writeFileSync(join(work, 'cluster.json'), JSON.stringify(cluster, null, 1));
  markdown = withClusterSection(markdown, renderCluster(cluster, results.versions));
}
writeFileSync(outPath, markdown);
log(`wrote ${outPath} (raw: bench/work/results.json) in ${(results.durationS / 60).toFixed(1)} min`);
process.exit(results.leftovers.length === 0 ? 0 : 3);
