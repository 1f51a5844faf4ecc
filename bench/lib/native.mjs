// Native start latency: /bin/true in a fresh container, every peer round-robin.
//
//   node bench/lib/native.mjs CONFIG.json
//
// run.mjs starts this inside a private mount namespace whose /sys/fs/cgroup/unified is
// covered by an empty tmpfs (crun refuses this host's hybrid layout otherwise); every peer
// is timed in that same namespace, spawned from this one Node process, so the figures
// compare. Writes its results as JSON to the config's outFile.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLK_TCK, dirsBottomUp, sleep } from './util.mjs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { repo, work, stateRoot, cgroupParent, rounds, warmup, deadlineAt, outFile } = cfg;
const dist = (p) => pathToFileURL(join(repo, 'server/dist/src', p)).href;
const { Runtime } = await import(dist('runtime/containers.js'));
const { runCommand, DEFAULT_SECURITY } = await import(dist('runtime/launcher.js'));
const { launcherPath, launcherExecFd } = await import(dist('runtime/native.js'));

const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 64 * MiB, cpus: 0.5, pidsLimit: 64 };
const LAUNCHER_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const ROOTFS = join(work, 'rootfs-busybox');
const imagePath = join(repo, 'rootfs/images/busybox');
// Every hierarchy crun and runc may create an absolute cgroupsPath in.
const ALL_HIERARCHIES = readdirSync('/sys/fs/cgroup').filter((d) => d !== 'unified');
const MAX_CONSECUTIVE_FAILURES = 3;
const RUN_TIMEOUT_MS = 30_000;

mkdirSync(stateRoot, { recursive: true });
const runtime = await Runtime.open({ stateRoot });

/** Children's CPU (reaped children, and what they reaped) of this process, in ms. */
function childrenCpuMs() {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) / CLK_TCK) * 1000;
}

/**
 * Spawns and waits, bounded; resolves with the exit code and the stderr's start. With
 * execFd, the program run is that fd's content as the child's fd 3 and `file` only its
 * argv[0]: how the server starts the launcher, from its one sealed copy (native.ts's
 * launcherExecFd), so the launcher skips making a copy of itself and re-executing it.
 */
function runProcess(file, args, env = LAUNCHER_ENV, captureStdout = false, execFd = null) {
  return new Promise((resolve) => {
    const stdio = ['ignore', captureStdout ? 'pipe' : 'ignore', 'pipe'];
    const child =
      execFd === null
        ? spawn(file, args, { stdio, env })
        : spawn('/proc/self/fd/3', args, { argv0: file, stdio: [...stdio, execFd], env });
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    let stderr = '';
    child.stderr.on('data', (d) => {
      if (stderr.length < 2000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stderr: String(err), pid: null });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, signal, stdout, stderr: stderr.trim(), pid: child.pid });
    });
  });
}

function ociConfig(cgroupsPath) {
  // `runc spec`'s default, with this benchmark's command, namespaces and limits.
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/bin/true'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: ROOTFS, readonly: true },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
    ],
    linux: {
      cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        memory: { limit: LIMITS.memoryBytes, swap: LIMITS.memoryBytes },
        cpu: { quota: Math.round(LIMITS.cpus * 100_000), period: 100_000 },
        pids: { limit: LIMITS.pidsLimit },
      },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

function ociPeer(name, binary) {
  const bundle = join(work, `bundle-${name}`);
  const root = join(stateRoot, name);
  mkdirSync(bundle, { recursive: true });
  mkdirSync(root, { recursive: true });
  let counter = 0;
  return {
    name,
    what: `${name} run (OCI bundle: runc spec defaults, readonly root, absolute cgroupsPath)`,
    async prepare() {
      const id = `${name}-${process.pid}-${counter++}`;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(ociConfig(`${cgroupParent}/${id}`)));
      return id;
    },
    async run(id) {
      const t0 = performance.now();
      const r = await runProcess(binary, ['--root', root, 'run', '--bundle', bundle, id]);
      return { ms: performance.now() - t0, ...r };
    },
  };
}

/** The launcher's user namespace modes, from its help ("--userns host|private"), if any. */
function usernsModes() {
  // --help may exit 0 or 2 and print on either stream.
  const r = spawnSync(launcherPath, ['--help'], { encoding: 'utf8', timeout: 5000 });
  const m = /--userns[ =]([a-z]+(?:\|[a-z]+)+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m ? m[1].split('|') : [];
}

/** The runtime's args with `--userns MODE` in place of whatever they said. */
function withUserns(args, mode) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (args[i] === '--userns') {
      i++;
      continue;
    }
    out.push(args[i]);
  }
  return insertBeforeDashDash(out, ['--userns', mode]);
}

const usernsModesKnown = usernsModes();

/** mdocker-init with the args the runtime builds (transformed), cgroups by the runtime's driver. */
function directLaunch(transformArgs, cmd = ['/bin/true'], captureStdout = false, fromDisk = false) {
  return async () => {
    const id = randomBytes(16).toString('hex');
    const dir = join(stateRoot, 'direct', id);
    const t0 = performance.now();
    mkdirSync(join(dir, 'layer'), { recursive: true });
    const handle = await runtime.cgroups.create(id, LIMITS, cgroupParent);
    const command = runCommand({
      id,
      hostname: id.slice(0, 12),
      imagePath,
      rootfs: null,
      layerDir: join(dir, 'layer'),
      layerSizeBytes: 256 * MiB,
      cgroupPaths: handle.paths,
      env: [],
      workdir: '/',
      tty: false,
      pidFile: join(dir, 'init.pid'),
      errorFile: join(dir, 'error.json'),
      exitFile: join(dir, 'exit.json'),
      cleanupDir: null,
      dieWithParent: true,
      security: DEFAULT_SECURITY,
      cmd,
    });
    const args = transformArgs ? transformArgs(command.args) : command.args;
    const t1 = performance.now();
    const r = await runProcess(command.file, args, LAUNCHER_ENV, captureStdout, fromDisk ? null : launcherExecFd());
    const t2 = performance.now();
    let error = null;
    if (r.code !== 0)
      error = existsSync(join(dir, 'error.json')) ? readFileSync(join(dir, 'error.json'), 'utf8').trim() : r.stderr;
    // The launcher removed its cgroups already; this confirms it, as the runtime does.
    await runtime.cgroups.remove(handle).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    const t3 = performance.now();
    return { ms: t3 - t0, launcherMs: t2 - t1, code: r.code, stdout: r.stdout, stderr: error ?? r.stderr };
  };
}

function insertBeforeDashDash(args, extra) {
  const i = args.indexOf('--');
  return i < 0 ? [...args, ...extra] : [...args.slice(0, i), ...extra, ...args.slice(i)];
}

const peers = [];

peers.push({
  name: 'mdocker',
  what: 'mdocker runtime library in-process: Runtime.create → spawn mdocker-init → started → exited (cgroups, state dir, overlay, seccomp: everything `mdocker run` does minus Node start), the launcher started from the sealed copy as the server starts it',
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const prepared = await runtime.create({
      image: 'busybox',
      cmd: ['/bin/true'],
      tty: false,
      limits: LIMITS,
      cgroupParent,
      autoRemove: true,
      dieWithParent: true,
    });
    const id = prepared.record.id;
    const t1 = performance.now();
    // From the sealed copy, as the server starts it (runProcess).
    const child = spawn('/proc/self/fd/3', prepared.args, {
      argv0: prepared.file,
      stdio: ['ignore', 'ignore', 'pipe', launcherExecFd()],
      env: LAUNCHER_ENV,
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    const exit = new Promise((resolve) => child.on('close', (code) => resolve(code ?? 128)));
    const started = runtime.started(id, child.pid).catch(() => undefined);
    const code = await exit;
    clearTimeout(timer);
    const t2 = performance.now();
    await started;
    const { error } = await runtime.exited(id, code);
    const t3 = performance.now();
    return {
      ms: t3 - t0,
      createMs: t1 - t0,
      launcherMs: t2 - t1,
      exitedMs: t3 - t2,
      code,
      stderr: error ? JSON.stringify(error) : stderr,
    };
  },
});

// Which user namespace mode the runtime's args give, asked of the kernel: the default
// container's uid_map is the identity in the host's namespace, a slot of ids in its own.
let usernsDefault = null;
let usernsProbe = null;
if (usernsModesKnown.length > 0) {
  const probe = await directLaunch(null, ['/bin/cat', '/proc/self/uid_map'], true)();
  usernsProbe = probe.code === 0 ? probe.stdout.trim().replace(/\s+/g, ' ') : `failed: ${probe.stderr}`;
  if (probe.code === 0) usernsDefault = /^0 0 4294967295$/.test(usernsProbe) ? 'host' : 'private';
}

peers.push({
  name: 'mdocker-init',
  what: `mdocker-init alone, with the args the runtime builds, started from the sealed copy as the server starts it; cgroups made by the runtime's driver in-process${usernsDefault ? ` (user namespace: ${usernsDefault}, the runtime's default)` : ''}`,
  async prepare() {},
  run: directLaunch(null),
});

peers.push({
  name: 'mdocker-init, from disk',
  what: 'mdocker-init as above, started from its file as `mdocker run` without -t starts it: it makes a sealed copy of itself and re-executes it first (CVE-2019-5736)',
  async prepare() {},
  run: directLaunch(null, ['/bin/true'], false, true),
});

for (const mode of usernsModesKnown) {
  if (mode === usernsDefault) continue;
  peers.push({
    name: `mdocker-init --userns ${mode}`,
    what: `mdocker-init as above with \`--userns ${mode}\` (not the runtime's default)`,
    async prepare() {},
    run: directLaunch((args) => withUserns(args, mode)),
  });
}

peers.push(ociPeer('crun', 'crun'));
peers.push(ociPeer('runc', 'runc'));

peers.push({
  name: 'bwrap',
  what: 'bwrap --unshare-pid --unshare-uts --unshare-ipc --unshare-net --bind IMAGE / --proc /proc --dev /dev (no cgroup: bwrap has none)',
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const r = await runProcess('bwrap', [
      '--unshare-pid',
      '--unshare-uts',
      '--unshare-ipc',
      '--unshare-net',
      '--bind',
      ROOTFS,
      '/',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '/bin/true',
    ]);
    return { ms: performance.now() - t0, ...r };
  },
});

peers.push({
  name: 'floor',
  what: 'bench/floor.c: clone(pid,uts,ipc,net,mnt) + mount private + bind root + /proc + pivot_root + exec, nothing else',
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const r = await runProcess(join(work, 'floor'), [ROOTFS, '/bin/true']);
    return { ms: performance.now() - t0, ...r };
  },
});

/** The `mdocker` a user runs: package.json's bin, started by its shebang. */
const mdockerBin = join(repo, JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).bin.mdocker);

peers.push({
  name: 'mdocker-cli',
  what: "`mdocker run --rm -m 64m --cpus 0.5 --pids-limit 64 busybox /bin/true`, whole process (Node start included): package.json's bin, started by its shebang as a user's `mdocker`",
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const r = await runProcess(
      mdockerBin,
      [
        'run',
        '--rm',
        '--cgroup-parent',
        cgroupParent,
        '-m',
        '64m',
        '--cpus',
        '0.5',
        '--pids-limit',
        '64',
        'busybox',
        '/bin/true',
      ],
      { ...process.env, MDOCKER_STATE_ROOT: stateRoot },
    );
    return { ms: performance.now() - t0, ...r };
  },
});

peers.push({
  name: 'mdocker-cli --help',
  what: '`mdocker --help`, whole process: Node start plus loading the CLI, no container',
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const r = await runProcess(mdockerBin, ['--help'], process.env);
    return { ms: performance.now() - t0, ...r };
  },
});

peers.push({
  name: 'node -e 0',
  what: 'Node start alone, for reference',
  async prepare() {},
  async run() {
    const t0 = performance.now();
    const r = await runProcess(process.execPath, ['-e', '0'], process.env);
    return { ms: performance.now() - t0, ...r };
  },
});

const results = Object.fromEntries(
  peers.map((p) => [
    p.name,
    {
      what: p.what,
      samples: [],
      parts: {},
      failures: 0,
      consecutiveFailures: 0,
      lastError: null,
      disabled: false,
      childCpuMs: 0,
    },
  ]),
);

let roundsDone = 0;
let stoppedBy = 'rounds';
for (let round = 0; round < warmup + rounds; round++) {
  if (Date.now() > deadlineAt) {
    stoppedBy = 'time';
    break;
  }
  for (let k = 0; k < peers.length; k++) {
    const peer = peers[(round + k) % peers.length];
    const res = results[peer.name];
    if (res.disabled) continue;
    const token = await peer.prepare();
    const cpu0 = childrenCpuMs();
    let r;
    try {
      r = await peer.run(token);
    } catch (err) {
      r = { ms: NaN, code: -1, stderr: String(err?.stack ?? err) };
    }
    const cpu1 = childrenCpuMs();
    if (r.code !== 0) {
      res.failures++;
      res.consecutiveFailures++;
      res.lastError = `exit ${r.code}: ${String(r.stderr).slice(0, 500)}`;
      if (res.consecutiveFailures >= MAX_CONSECUTIVE_FAILURES) res.disabled = true;
      continue;
    }
    res.consecutiveFailures = 0;
    if (round < warmup) continue;
    res.samples.push(r.ms);
    res.childCpuMs += cpu1 - cpu0;
    for (const key of ['createMs', 'launcherMs', 'exitedMs']) {
      if (r[key] !== undefined) (res.parts[key] ??= []).push(r[key]);
    }
  }
  if (round >= warmup) roundsDone++;
  // Give the kernel's deferred namespace teardown (netns cleanup runs in a workqueue) a
  // moment, equally for every peer.
  await sleep(2);
}

// Leftovers: nothing may remain below our cgroup parent in any hierarchy.
const leftovers = [];
for (const h of ALL_HIERARCHIES) {
  const parent = join('/sys/fs/cgroup', h, cgroupParent);
  const dirs = dirsBottomUp(parent).filter((d) => d !== parent);
  for (const d of dirs) {
    // A container that is gone leaves an empty cgroup at most; remove it and say so.
    let removed = false;
    for (let attempt = 0; attempt < 50 && !removed; attempt++) {
      try {
        rmdirSync(d);
        removed = true;
      } catch {
        await sleep(20);
      }
    }
    leftovers.push(`${d}${removed ? ' (removed by the bench)' : ' (could not remove)'}`);
  }
  if (existsSync(parent)) {
    try {
      rmdirSync(parent);
    } catch (err) {
      leftovers.push(`${parent}: ${err.code}`);
    }
  }
}
const stateLeft = [];
for (const sub of ['', 'crun', 'runc', 'direct']) {
  const d = join(stateRoot, sub);
  if (!existsSync(d)) continue;
  for (const e of readdirSync(d))
    if (!['crun', 'runc', 'direct', 'names'].includes(e) || sub !== '') stateLeft.push(join(d, e));
}
rmSync(stateRoot, { recursive: true, force: true });

writeFileSync(
  outFile,
  JSON.stringify(
    {
      roundsDone,
      stoppedBy,
      userns: { modes: usernsModesKnown, default: usernsDefault, probe: usernsProbe },
      peers: results,
      leftovers,
      stateLeft,
    },
    null,
    1,
  ),
);
