// Renders the results object into RESULTS.md: machine and versions, the targets with
// met / missed by how much, then each figure's table.
import { fmtBytes, fmtMs, fmtRatio, MiB } from './util.mjs';

const NATIVE_ORDER = [
  'mdocker',
  'mdocker-init',
  'mdocker-init, from disk',
  'mdocker-init --userns host',
  'mdocker-init --userns private',
  'crun',
  'runc',
  'bwrap',
  'floor',
  'mdocker-cli',
  'mdocker-cli --help',
  'node -e 0',
];
const NATIVE_PEERS = ['floor', 'bwrap', 'crun', 'runc'];

function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

function table(header, rows) {
  return [row(header), row(header.map(() => '---')), ...rows.map(row)].join('\n');
}

function range(s) {
  return s && s.n ? `${fmtMs(s.min)}–${fmtMs(s.max)}` : '–';
}

function pct(x) {
  return Number.isFinite(x) ? `${x.toFixed(1)} %` : '–';
}

/** "met" or "missed by N× / N %", for a figure that should be at most `limit`. */
function atMost(value, limit, unit = '') {
  if (!Number.isFinite(value)) return 'not measured';
  if (value <= limit) return `**met** (${(value / limit).toFixed(2)} of the limit)`;
  const over = value / limit;
  const noise = over < 1.05 ? ', within the run-to-run noise' : '';
  return `**missed** by ${over >= 2 ? `${over.toFixed(1)}×` : `${((over - 1) * 100).toFixed(0)} %`}${unit ? ` (${unit}${noise})` : noise ? ` (${noise.slice(2)})` : ''}`;
}

function atLeast(value, limit) {
  if (!Number.isFinite(value)) return 'not measured';
  if (value >= limit) return `**met** (${(value / limit).toFixed(2)}× the minimum)`;
  return `**missed**: ${(value / limit).toFixed(2)} of the minimum (needs ${(limit / value).toFixed(1)}× more)`;
}

function nativeMedian(native, name) {
  const s = native?.summary?.[name];
  return s && s.n ? s.median : NaN;
}

/**
 * Sampling 1000 containers: measured at 1000 when the server kept up with 1 Hz there, else
 * estimated from the CPU each sample really cost at the largest N reached.
 */
function samplingTarget(dens) {
  const what = 'sampling 1000 containers under 10 % of one core';
  if (!dens?.sampling) return [what, 'not measured', 'not measured'];
  const at1000 = dens.sampling[1000];
  if (at1000 && at1000.perContainerHz >= 0.95) {
    return [
      what,
      `${pct(at1000.cpuPercent)} of one core (empty server: ${pct(dens.idleCpu[0])})`,
      atMost(at1000.cpuPercent, 10),
    ];
  }
  const n = Math.max(...Object.keys(dens.sampling).map(Number));
  const s = dens.sampling[n];
  if (!s || !Number.isFinite(s.cpuMsPerSample)) return [what, 'not reached', 'not measured'];
  const estimate = dens.idleCpu[0] + s.cpuMsPerSample * 100;
  return [
    what,
    `${n === 1000 ? '' : '1000 not reached; '}at ${n}: ${pct(s.cpuPercent)} of one core while sampling each container ${s.perContainerHz.toFixed(2)} times a second${s.perContainerHz < 0.95 ? ' (the 1 s rounds overran)' : ''}: ${s.cpuMsPerSample.toFixed(2)} ms of CPU per container per sample → about ${pct(estimate)} for 1000 at 1 Hz (estimate)`,
    `${atMost(estimate, 10)} (estimate)`,
  ];
}

/** Issue 18's targets, each from the same run's figures (bench/PROFILE.md says why a miss is one). */
function issue18Targets(r) {
  const n = r.native;
  const pg = r.playground ?? {};
  const burst = pg.concurrent?.prompt;
  const cpuPerCreate = pg.sequential?.serverCpuMsPerCycle;
  const setup = r.classroom?.setup;
  const students = r.classroom?.students;
  const watched = r.classroom?.summary?.consolePage ?? r.classroom?.summary?.eventStream;
  const floorMs = nativeMedian(n, 'floor');
  const initMs = nativeMedian(n, 'mdocker-init');
  const mdockerMs = nativeMedian(n, 'mdocker');
  const thrAll = r.throughputAllCpus ?? {};
  const bare = r.ptyCeiling?.busybox;
  const bareHost = r.ptyCeiling?.host;
  const wettyMiBps = r.wetty?.throughput?.MiBps;
  const wettyHostMiBps = r.wetty?.throughputHost?.MiBps;
  const gnuMiBps = r.throughputGnu?.MiBps;
  const busyboxWriter = r.ptyCeiling?.busybox?.writerLimitMiBps;
  const cliOverNode = nativeMedian(n, 'mdocker-cli') - nativeMedian(n, 'node -e 0');
  const joinP99 = setup?.createToPrompt?.p99;
  const joinMax = setup?.createToPrompt?.max;
  return [
    [
      `${r.playground?.concurrent?.classSize ?? 30} at once, cold, create→prompt p99 under 250 ms (no warm pool)`,
      burst ? `${fmtMs(burst.p99)} (p50 ${fmtMs(burst.median)})` : '–',
      atMost(burst?.p99, 250),
    ],
    [
      'server CPU per create + attach + delete at most 8 ms',
      Number.isFinite(cpuPerCreate) ? `${cpuPerCreate.toFixed(1)} ms (sequential, one session)` : '–',
      atMost(cpuPerCreate, 8),
    ],
    [
      `${students ?? 60} students join one class and open their shells within a minute: create→prompt p99 under 300 ms`,
      setup
        ? `${fmtMs(joinP99)} (p50 ${fmtMs(setup.createToPrompt.median)}); all in ${setup.seconds.toFixed(1)} s`
        : '–',
      atMost(joinP99, 300),
    ],
    [
      '… every prompt within 1 s',
      setup ? `slowest ${fmtMs(joinMax)}` : '–',
      setup && setup.seconds > 60 ? `**missed**: ${setup.seconds.toFixed(0)} s in all` : atMost(joinMax, 1000),
    ],
    [
      'keystroke echo p99 under 10 ms with 50 neighbours running `yes`',
      pg.echo?.noisy ? `${fmtMs(pg.echo.noisy.p99)} (with ${pg.echo.noisyCount})` : '–',
      atMost(pg.echo?.noisy?.p99, 10),
    ],
    [
      'launcher ÷ C floor (median) at most 1.3×',
      `${fmtRatio(initMs / floorMs)} (${fmtMs(initMs)} vs ${fmtMs(floorMs)})`,
      atMost(initMs / floorMs, 1.3),
    ],
    [
      'runtime (create→exit in-process) ÷ C floor at most 1.5×',
      `${fmtRatio(mdockerMs / floorMs)} (${fmtMs(mdockerMs)})`,
      atMost(mdockerMs / floorMs, 1.5),
    ],
    [
      "terminal throughput, same binaries, at least 1.5× wetty: the image's busybox",
      Number.isFinite(thrAll.MiBps / wettyMiBps)
        ? `${thrAll.MiBps.toFixed(1)} vs ${wettyMiBps.toFixed(1)} MiB/s: ${fmtRatio(thrAll.MiBps / wettyMiBps)}` +
          (busyboxWriter
            ? `; 1.5× wetty would be ${fmtRatio((1.5 * wettyMiBps) / busyboxWriter)} of what busybox \`head\` itself can write (${busyboxWriter.toFixed(1)})`
            : '')
        : '–',
      atLeast(thrAll.MiBps / wettyMiBps, 1.5),
    ],
    [
      "… GNU coreutils on both sides (the host's `yes` and `head`)",
      Number.isFinite(gnuMiBps / wettyHostMiBps)
        ? `${gnuMiBps.toFixed(1)} vs ${wettyHostMiBps.toFixed(1)} MiB/s: ${fmtRatio(gnuMiBps / wettyHostMiBps)}`
        : `not measured: ${r.throughputGnu?.error ?? r.throughputGnu?.skipped ?? r.wetty?.throughputHost?.skipped ?? '–'}`,
      atLeast(gnuMiBps / wettyHostMiBps, 1.5),
    ],
    [
      "terminal throughput at least 0.9× the bare pty reader: the image's busybox",
      Number.isFinite(thrAll.MiBps / bare?.MiBps)
        ? `${thrAll.MiBps.toFixed(1)} vs ${bare.MiBps.toFixed(1)} MiB/s: ${fmtRatio(thrAll.MiBps / bare.MiBps)}`
        : '–',
      atLeast(thrAll.MiBps / bare?.MiBps, 0.9),
    ],
    [
      '… GNU coreutils on both sides',
      Number.isFinite(gnuMiBps / bareHost?.MiBps)
        ? `${gnuMiBps.toFixed(1)} vs ${bareHost.MiBps.toFixed(1)} MiB/s: ${fmtRatio(gnuMiBps / bareHost.MiBps)}`
        : `not measured: ${r.throughputGnu?.error ?? r.throughputGnu?.skipped ?? bareHost?.error ?? '–'}`,
      atLeast(gnuMiBps / bareHost?.MiBps, 0.9),
    ],
    [
      '`mdocker run --rm busybox true`, whole process, minus `node -e 0`: at most 40 ms',
      Number.isFinite(cliOverNode) ? `${fmtMs(cliOverNode)}` : '–',
      atMost(cliOverNode, 40),
    ],
    [
      `teacher console, ${students ?? 60} students typing: server CPU under 20 % of a core`,
      watched ? `${watched.serverCpuPercent.mean.toFixed(1)} %` : '–',
      atMost(watched?.serverCpuPercent?.mean, 20),
    ],
  ];
}

export function renderResults(r) {
  const out = [];
  const push = (...lines) => out.push(...lines);
  const n = r.native;
  const pg = r.playground ?? {};
  const thr = r.throughput ?? {};
  const wetty = r.wetty ?? {};
  const dens = r.density;

  push(
    '# mdocker benchmarks, side by side with the peers',
    '',
    `Written by \`npm run bench\` (bench/run.mjs, \`BENCH_SCALE=${r.scale}\`) on ${r.startedAt}, in ${(r.durationS / 60).toFixed(1)} min. ` +
      'Raw numbers of this run: `bench/work/results.json` (not committed). Times in milliseconds unless marked; ' +
      '"p99" is the nearest-rank 99th percentile (with fewer than 100 samples it is the maximum); ratios are of medians.',
    '',
    '## Machine and versions',
    '',
    table(
      ['', ''],
      [
        [
          'machine',
          `${r.machine.cpuModel}, ${r.machine.nproc} CPUs (nproc), ${fmtBytes(r.machine.memTotal)} memory, no swap`,
        ],
        ['kernel', r.versions.kernel],
        ['cgroups', r.machine.cgroups],
        ['node', r.versions.node],
        ['crun', r.versions.crun ?? 'not installed'],
        ['runc', r.versions.runc ?? 'not installed'],
        ['bubblewrap', r.versions.bwrap ?? 'not installed'],
        ['wetty', r.versions.wetty ?? `not available: ${r.wettyStatus}`],
        [
          'mdocker',
          `${r.versions.mdocker}${r.versions.dirty ? ` (working tree: ${r.versions.dirty})` : ''}; launcher built ${r.versions.launcherBuilt}${r.versions.stale ? ` (**${r.versions.stale}**)` : ''}`,
        ],
        ['busybox image', r.versions.busybox ?? '?'],
        [
          'load',
          `load average ${r.load.start.join(' ')} at the start, ${r.load.end.join(' ')} at the end; the host's CPUs were ${pct(r.load.hostBusyPercent)} busy over the run ` +
            '(other engineers share this machine: absolute times are noisy, interleaved ratios much less so)',
        ],
      ],
    ),
    '',
  );

  // ---- targets ----
  const sumSeq = pg.sequential?.prompt;
  const sumWarm = pg.warmSequential?.prompt;
  const mdockerMs = nativeMedian(n, 'mdocker');
  const initMs = nativeMedian(n, 'mdocker-init');
  const crunMs = nativeMedian(n, 'crun');
  const floorMs = nativeMedian(n, 'floor');
  // Like for like: no CPU limit on either side and the same busybox binaries writing.
  const thrAll = r.throughputAllCpus ?? {};
  const ceiling = r.ptyCeiling ?? {};
  const thrRatio = thrAll.MiBps / wetty.throughput?.MiBps;
  const memBeyondShell = dens ? dens.memory.cgroupPerContainer - dens.memory.shellPss : NaN;
  const firstDecile = dens?.deciles?.[0]?.median;
  const lastDecile = dens?.deciles?.[dens.deciles.length - 1]?.median;
  const flatRatio = lastDecile / firstDecile;
  const targets = [
    [
      'native start no slower than crun (mdocker runtime, the equivalent of `crun run`)',
      `${fmtMs(mdockerMs)} vs crun ${fmtMs(crunMs)}: ${fmtRatio(mdockerMs / crunMs)}`,
      atMost(mdockerMs / crunMs, 1),
    ],
    [
      '… the launcher alone (mdocker-init, cgroups made in-process)',
      `${fmtMs(initMs)} vs crun ${fmtMs(crunMs)}: ${fmtRatio(initMs / crunMs)}`,
      atMost(initMs / crunMs, 1),
    ],
    [
      'native start within 1.5× of the C floor (mdocker runtime)',
      `${fmtRatio(mdockerMs / floorMs)} of the floor (${fmtMs(floorMs)})`,
      atMost(mdockerMs / floorMs, 1.5),
    ],
    ['… the launcher alone', `${fmtRatio(initMs / floorMs)} of the floor`, atMost(initMs / floorMs, 1.5)],
    ['create→prompt p50 under 30 ms, sequential', sumSeq ? `${fmtMs(sumSeq.median)}` : '–', atMost(sumSeq?.median, 30)],
    ['create→prompt p99 under 100 ms, sequential', sumSeq ? `${fmtMs(sumSeq.p99)}` : '–', atMost(sumSeq?.p99, 100)],
    [
      `… with a warm pool (\`--warm-pool ${pg.warmPool ?? '–'}\`, not the default), p50`,
      sumWarm ? `${fmtMs(sumWarm.median)}` : '–',
      atMost(sumWarm?.median, 30),
    ],
    ['… with a warm pool, p99', sumWarm ? `${fmtMs(sumWarm.p99)}` : '–', atMost(sumWarm?.p99, 100)],
    [
      'terminal throughput at least 2× wetty (same binaries, no CPU limit on either side)',
      Number.isFinite(thrRatio)
        ? `${thrAll.MiBps.toFixed(1)} vs ${wetty.throughput.MiBps.toFixed(1)} MiB/s: ${fmtRatio(thrRatio)}` +
          (ceiling.busybox?.writerLimitMiBps
            ? `; 2× wetty would be ${fmtRatio((2 * wetty.throughput.MiBps) / ceiling.busybox.writerLimitMiBps)} of what the writing \`head\` itself can write (${ceiling.busybox.writerLimitMiBps.toFixed(1)})`
            : '') +
          (thr.MiBps ? `; with the default 0.5 CPU ${fmtRatio(thr.MiBps / wetty.throughput.MiBps)}` : '')
        : 'wetty not measured',
      atLeast(thrRatio, 2),
    ],
    [
      'keystroke echo p99 under 10 ms with 50 noisy neighbours',
      pg.echo?.noisy ? `${fmtMs(pg.echo.noisy.p99)} (with ${pg.echo.noisyCount})` : '–',
      atMost(pg.echo?.noisy?.p99, 10),
    ],
    [
      'per-container host memory under 2 MiB beyond the shell',
      dens
        ? `${fmtBytes(memBeyondShell)} (${fmtBytes(dens.memory.cgroupPerContainer)} in all, shell ${fmtBytes(dens.memory.shellPss)})`
        : '–',
      atMost(memBeyondShell / MiB, 2),
    ],
    [
      '1000 containers, flat create latency (last decile median within 1.5× of the first)',
      dens
        ? `${dens.count} created${dens.failure ? ` (failed at ${dens.failure.at})` : ''}; decile medians ${fmtMs(firstDecile)} → ${fmtMs(lastDecile)} (${fmtRatio(flatRatio)})`
        : '–',
      dens && dens.count >= 1000
        ? atMost(flatRatio, 1.5)
        : `**missed**: ${dens?.count ?? 0} of 1000 created (stopped by ${dens?.stoppedBy ?? '?'}), and the latency grew ${fmtRatio(flatRatio)} on the way`,
    ],
    samplingTarget(dens),
  ];
  push('## Targets (issue 6)', '', table(['target', 'measured', 'result'], targets), '');
  push('## Targets (issue 18)', '', table(['target', 'measured', 'result'], issue18Targets(r)), '');

  // ---- 1. native ----
  push('## 1. Native start: /bin/true in a fresh container', '');
  if (!n || n.error) {
    push(`Not measured: ${n?.error ?? 'skipped'}`, '');
  } else {
    push(
      `pid+uts+ipc+net+mnt namespaces, pivot_root into the busybox image, a cgroup with memory 64 MiB (no swap), 0.5 CPU and 64 pids (except bwrap and the floor, which have none), removed afterwards. ` +
        `${n.roundsDone} rounds after ${n.warmup} warm-up rounds, peers interleaved round-robin (the starting peer rotates every round), each spawned by the same Node process, ` +
        'all inside one private mount namespace in which /sys/fs/cgroup/unified is covered by an empty tmpfs (crun refuses the hybrid layout otherwise; the host is unchanged). ' +
        `Stopped by ${n.stoppedBy}. "CPU" is the CPU time of the peer's processes and their children per start (from this process's reaped-children times).`,
      '',
    );
    const header = ['peer', 'median', 'p99', 'min–max', 'n', 'CPU ms/start', ...NATIVE_PEERS.map((p) => `÷ ${p}`)];
    const rows = [];
    for (const name of NATIVE_ORDER) {
      const s = n.summary[name];
      if (!s) continue;
      const p = n.peers[name];
      if (!s.n) {
        rows.push([
          `**${name}**`,
          `failed: ${String(p.lastError ?? 'no samples')
            .replace(/\|/g, '/')
            .replace(/\s+/g, ' ')
            .slice(0, 160)}`,
          '',
          '',
          '0',
          '',
          ...NATIVE_PEERS.map(() => ''),
        ]);
        continue;
      }
      rows.push([
        `**${name}**`,
        fmtMs(s.median),
        fmtMs(s.p99),
        range(s),
        String(s.n),
        fmtMs(p.childCpuMs / s.n),
        ...NATIVE_PEERS.map((peer) => (peer === name ? '1' : fmtRatio(s.median / nativeMedian(n, peer)))),
      ]);
    }
    push(table(header, rows), '');
    push('What each row runs:', '');
    for (const name of NATIVE_ORDER)
      if (n.peers[name])
        push(
          `- **${name}**: ${n.peers[name].what}${n.peers[name].failures ? ` (${n.peers[name].failures} failed runs; last: ${String(n.peers[name].lastError).slice(0, 200)})` : ''}`,
        );
    push('');
    const parts = n.parts?.mdocker;
    if (parts) {
      push(
        `The mdocker row split (medians): \`Runtime.create\` (validate, image, cgroup dirs and limits, state dir) ${fmtMs(parts.createMs?.median)}, ` +
          `the launcher process from spawn to exit ${fmtMs(parts.launcherMs?.median)}, \`started\` + \`exited\` after it (state writes, cgroup removal) ${fmtMs(parts.exitedMs?.median)}. ` +
          `mdocker-init's own process, spawn to exit: ${fmtMs(n.parts?.['mdocker-init']?.launcherMs?.median)}.`,
        '',
      );
    }
    push(
      n.userns?.modes?.length
        ? `User namespaces: the launcher offers \`--userns ${n.userns.modes.join('|')}\`. The runtime's default, asked of the kernel (the uid_map of a container started with the runtime's args: \`${n.userns.probe}\`), is **${n.userns.default ?? 'unknown'}**; the mdocker and mdocker-init rows run it, and ${n.userns.modes
            .filter((m) => m !== n.userns.default)
            .map((m) => `"mdocker-init --userns ${m}"`)
            .join(', ')} the other mode, ÷ mdocker-init: ${n.userns.modes
            .filter((m) => m !== n.userns.default)
            .map((m) => fmtRatio(nativeMedian(n, `mdocker-init --userns ${m}`) / nativeMedian(n, 'mdocker-init')))
            .join(', ')}.`
        : "User namespaces: `mdocker-init --help` lists no `--userns` modes in this build, so there is one mdocker-init row (no user namespace), which is the runtime's default.",
      '',
    );
    push(
      `Node's own start (\`node -e 0\`) is ${fmtMs(nativeMedian(n, 'node -e 0'))}; the CLI's whole run is ${fmtMs(nativeMedian(n, 'mdocker-cli'))}, i.e. ${fmtMs(nativeMedian(n, 'mdocker-cli') - nativeMedian(n, 'mdocker'))} over the in-process runtime; \`mdocker --help\` (loading the CLI, no container) is ${fmtMs(nativeMedian(n, 'mdocker-cli --help') - nativeMedian(n, 'node -e 0'))} over Node's start.`,
      '',
    );
  }

  // ---- 2. playground start ----
  push('## 2. Playground start: POST create → first byte of the prompt on the attached WebSocket', '');
  if (pg.error) push(`Not measured: ${pg.error}`, '');
  const seq = pg.sequential;
  const conc = pg.concurrent;
  const wStart = wetty.start;
  const startRows = [];
  const addStart = (label, s, ref) =>
    startRows.push([
      label,
      fmtMs(s?.median),
      fmtMs(s?.p99),
      range(s),
      String(s?.n ?? 0),
      ref && s ? fmtRatio(s.median / ref.median) : '–',
    ]);
  if (seq) {
    addStart(`sequential, create→prompt`, seq.prompt, wStart);
    addStart(`sequential, POST alone`, seq.post);
    addStart(`sequential, DELETE (not part of the start)`, seq.delete);
  }
  if (conc) {
    addStart(`${r.config.classSize} at once, create→prompt`, conc.prompt, wStart);
    addStart(`${r.config.classSize} at once, POST alone`, conc.post);
    addStart(`${r.config.classSize} at once, whole burst (wall)`, conc.burstWall);
  }
  const wseq = pg.warmSequential;
  const wconc = pg.warmConcurrent;
  if (wseq) {
    addStart(`warm pool (\`--warm-pool ${pg.warmPool}\`), sequential, create→prompt`, wseq.prompt, wStart);
    addStart(`warm pool, sequential, POST alone`, wseq.post);
  }
  if (wconc) {
    addStart(`warm pool, ${r.config.classSize} at once, create→prompt`, wconc.prompt, wStart);
    addStart(`warm pool, ${r.config.classSize} at once, whole burst (wall)`, wconc.burstWall);
    if (wconc.refill) addStart(`warm pool: refilling ${pg.warmPool} after a burst (not part of a start)`, wconc.refill);
  }
  if (wStart && !wStart.skipped)
    addStart('wetty: page open → first byte of the host shell prompt (no container)', wStart);
  if (startRows.length) {
    push(table(['what', 'p50', 'p99', 'min–max', 'n', '÷ wetty'], startRows), '');
    push(
      `A real \`mdocker serve\` on 127.0.0.1 (its own process; caps and rate limits lifted by flags, everything else default: 256 MiB, 0.5 CPU, 256 pids per container), ` +
        `one browser session per student; the client answers the shell's cursor-position query as xterm.js does. ` +
        `${seq ? `The server spent ${fmtMs(seq.serverCpuMsPerCycle)} ms of CPU per sequential create + attach + delete: ${r.config.classSize} at once queue behind each other on its one event loop. ` : ''}` +
        `${conc ? `${r.config.classSize} sessions click at the same moment, in ${conc.burstWall.n} burst${conc.burstWall.n === 1 ? '' : 's'}. ` : ''}` +
        `${wseq ? `The warm rows are a second server started with \`--warm-pool ${pg.warmPool}\` (off by default): it keeps that many default containers started ahead of demand and hands one to a default create, then starts a replacement. Each click (and each burst) waits until the pool is full again, as clicks minutes apart find it; that wait is not in the figures, and a burst larger than the pool, or clicks faster than the launcher refills it, fall back to the cold figures above. ` : ''}` +
        `${seq?.errors?.length ? `Errors: ${seq.errors.join('; ')}. ` : ''}${conc?.errorCount ? `Concurrent errors (${conc.errorCount}): ${conc.errors.join('; ')}.` : ''}`,
      '',
    );
  }

  // ---- 3. throughput ----
  push(
    `## 3. Terminal throughput: ${fmtBytes(r.config.throughputBytes)} through the terminal to a WebSocket client that acknowledges as a browser does`,
    '',
  );
  const wettySame = wetty.throughput?.MiBps;
  const wettyHost = wetty.throughputHost?.MiBps;
  /** wetty's rate with the same binary set as a row's ("busybox …" or the host's). */
  const wettyOf = (binaries) => (binaries.startsWith('busybox') ? wettySame : wettyHost);
  const thrRow = (what, binaries, t, { cpuPerGiB = t.serverCpuSecondsPerGiB, perMessage = t.bytesPerFrame } = {}) => {
    if (t?.MiBps === undefined)
      return [what, binaries, `not measured: ${t?.error ?? t?.skipped ?? '–'}`, '', '', '', '', '', '', ''];
    const same = binaries.startsWith('busybox');
    const wettyOfSet = wettyOf(binaries);
    return [
      what,
      binaries,
      fmtBytes(t.bytesReceived),
      t.seconds.toFixed(1),
      t.MiBps.toFixed(1),
      cpuPerGiB.toFixed(1),
      t.clientCpuSeconds?.toFixed(1) ?? '–',
      fmtBytes(perMessage),
      wettyOfSet ? fmtRatio(t.MiBps / wettyOfSet) : '–',
      fmtRatio(t.MiBps / (same ? ceiling.busybox?.writerLimitMiBps : ceiling.host?.writerLimitMiBps)),
    ];
  };
  const tRows = [];
  if (r.throughput) tRows.push(thrRow('mdocker serve, default limits (0.5 CPU)', 'busybox (the image)', thr));
  if (r.throughputAllCpus)
    tRows.push(thrRow(`mdocker serve, \`cpus: ${thrAll.cpus}\` (no limit)`, 'busybox (the image)', thrAll));
  if (wetty.throughput) tRows.push(thrRow(`wetty ${r.versions.wetty}`, 'busybox (the image)', wetty.throughput));
  if (r.throughputGnu)
    tRows.push(
      thrRow(
        `mdocker serve, \`cpus: ${r.throughputGnu.cpus ?? thrAll.cpus}\` (no limit)`,
        'host (GNU coreutils), `yes` and `head` copied into the image',
        r.throughputGnu,
      ),
    );
  if (wetty.throughputHost)
    tRows.push(thrRow(`wetty ${r.versions.wetty}`, 'host (GNU coreutils)', wetty.throughputHost));
  for (const [name, binaries] of [
    ['busybox', 'busybox (the image)'],
    ['host', 'host (GNU coreutils)'],
  ]) {
    const c = ceiling[name];
    if (!c) continue;
    tRows.push(
      thrRow('bare pty reader (no server)', binaries, c, {
        cpuPerGiB: c.readerCpuSeconds / (c.bytesReceived / 1024 ** 3),
        perMessage: c.bytesPerRead,
      }),
    );
    if (c.writerLimitMiBps)
      tRows.push([
        `the writer alone: \`head\`'s own CPU time (${c.writerCpuSeconds.toFixed(2)} s) as a rate`,
        binaries,
        '',
        '',
        c.writerLimitMiBps.toFixed(1),
        '',
        '',
        '',
        wettyOf(binaries) ? fmtRatio(c.writerLimitMiBps / wettyOf(binaries)) : '–',
        '1',
      ]);
  }
  if (tRows.length)
    push(
      table(
        [
          'server',
          'binaries writing',
          'received',
          'seconds',
          'MiB/s',
          'server CPU s per GiB',
          'client CPU s',
          'bytes per message',
          '÷ wetty, same binaries',
          "÷ the writer's limit",
        ],
        tRows,
      ),
      '',
    );
  push(
    `The command, the same for all: \`sh -c '${r.config.throughputScriptShown}'\` (80-column lines: the terminal scrolls, as real output does), started by a typed newline; ` +
      `timed from that keystroke to the end of the stream (mdocker: the \`exit\` message; wetty: \`logout\`; the bare reader: its last read). mdocker runs it in a container; wetty and the bare reader run it on the host, ` +
      "with PATH set to the image's /bin (the same busybox binaries as in the container) or to the host's. " +
      (r.throughputGnu
        ? "For the GNU row mdocker runs the host's own `yes` and `head` (and the libraries they load) copied into a copy of the image, named by path, as busybox's shell prefers its applets to PATH (bench/lib/gnu-image.mjs): the same files wetty's host row runs. "
        : '') +
      "busybox `head` writes to a terminal a line at a time (80 bytes per write(2)), GNU `head` whole buffers: most of the difference between the two binary sets is the writing process's own time in the kernel's tty layer, which no reader can take off it. " +
      "In the bare reader's runs `head` runs under `time -p` (busybox's for busybox, /usr/bin/time for the host's): its user + system time, as a rate, is what it could write with a core to itself and a reader that never held it up, a bound for every server. " +
      "The bare reader is the server's own pty path without the server (the addon's spawnPty and a tty.ReadStream in the bench's process): no screen, no WebSocket, no container, no CPU limit. " +
      "The mdocker client acks every 32 KiB (the web page acks once xterm has written them); the wetty client commits every 256 KiB as wetty's page does. " +
      "Server CPU from /proc/PID/stat (utime+stime) of the server process only (the bare reader: its own CPU; 'bytes per message' is its bytes per read). The client here does not parse the output (a browser's xterm.js would), so these are the servers' ceilings." +
      (thr.timedOut || thrAll.timedOut ? ' **mdocker timed out**: the rate is over the part received.' : '') +
      (wetty.throughput?.timedOut || wetty.throughputHost?.timedOut
        ? ' **wetty timed out**: the rate is over the part received.'
        : ''),
    '',
  );
  const rounds = r.config.throughputRounds ?? 1;
  if (rounds > 1) {
    const each = (label, t) =>
      t?.roundsMiBps ? `${label} ${t.roundsMiBps.map((v) => (v === null ? '–' : v.toFixed(1))).join(' / ')}` : null;
    const lines = [
      each('mdocker, default limits', thr),
      each(`mdocker, \`cpus: ${thrAll.cpus}\``, thrAll),
      each('mdocker, GNU', r.throughputGnu),
      each('wetty, busybox', wetty.throughput),
      each('wetty, host', wetty.throughputHost),
      each('bare reader, busybox', ceiling.busybox),
      each('bare reader, host', ceiling.host),
    ].filter((line) => line !== null);
    push(
      `Each row is the round with the median rate of ${rounds} rounds that ran the bare readers, mdocker and wetty in turn, so that a spell of foreign load on this shared machine falls on one round of each rather than on one server. Every round's MiB/s: ${lines.join('; ')}.`,
      '',
    );
  }
  if (!wetty.throughput || wetty.throughput.skipped)
    push(`wetty: not measured: ${wetty.throughput?.skipped ?? wetty.skipped ?? r.wettyStatus}.`, '');

  // ---- 4. echo ----
  push('## 4. Keystroke echo round trip', '');
  const e = pg.echo;
  if (e) {
    const eRows = [
      [
        'mdocker, idle server',
        fmtMs(e.idle.median),
        fmtMs(e.idle.p99),
        range(e.idle),
        String(e.idle.n),
        wetty.echo?.n ? fmtRatio(e.idle.median / wetty.echo.median) : '–',
      ],
      [
        `mdocker, ${e.noisyCount} neighbours running \`${r.config.noisyCommand}\``,
        fmtMs(e.noisy.median),
        fmtMs(e.noisy.p99),
        range(e.noisy),
        String(e.noisy.n),
        wetty.echo?.n ? fmtRatio(e.noisy.median / wetty.echo.median) : '–',
      ],
    ];
    for (const [what, ping] of [
      ['… the server alone (WebSocket ping → pong on that terminal), idle', e.idlePing],
      [`… the server alone, ${e.noisyCount} neighbours`, e.noisyPing],
    ])
      if (ping?.n) eRows.push([what, fmtMs(ping.median), fmtMs(ping.p99), range(ping), String(ping.n), '–']);
    if (wetty.echo?.n)
      eRows.push([
        'wetty, idle (host shell, tty echo)',
        fmtMs(wetty.echo.median),
        fmtMs(wetty.echo.p99),
        range(wetty.echo),
        String(wetty.echo.n),
        '1',
      ]);
    push(table(['what', 'p50', 'p99', 'min–max', 'n', '÷ wetty idle'], eRows), '');
    push(
      `"x" sent as a binary frame until a frame containing it comes back (busybox ash echoes it in raw mode), then DEL to keep the line short, 5–20 ms apart; after each, a WebSocket ping on the same connection, which the server answers itself: the difference between the two rows is the pty and the container's shell getting a turn on a CPU. ` +
        `With neighbours: each is a session of its own whose terminal is attached and acking (on a worker thread of the bench, so the probe's event loop is not theirs); ` +
        `meanwhile they received ${e.noisyOutputMiBps.toFixed(2)} MiB/s in all, in ${e.noisyFramesPerSecond.toFixed(0)} WebSocket messages a second (${e.noisyBytesPerFrame.toFixed(0)} bytes each on average), and the server used ${pct(e.noisyServerCpuPercent)} of one core.` +
        (e.errors?.length ? ` Errors: ${e.errors.join('; ')}` : ''),
      '',
    );
  } else if (pg.echoError) push(`Not measured: ${pg.echoError}`, '');

  // ---- 5. density ----
  push('## 5. Density: idle shells until 1000 or the first failure', '');
  if (dens) {
    const m = dens.memory;
    push(
      `${dens.count} containers created (target ${dens.target}; stopped by ${dens.stoppedBy}${dens.failure ? `: container ${dens.failure.at} failed: ${dens.failure.message}` : ''}), one after another through POST by a session per 100 (a session's containers share its network, a /24), each \`/bin/sh\` with the server's default limits, nobody attached. A fresh server.`,
      '',
      table(
        ['per container', 'bytes'],
        [
          ['the shell (PSS of the container init, busybox sh)', fmtBytes(m.shellPss)],
          ['the launcher (PSS of mdocker-init, parent half)', fmtBytes(m.launcherPss)],
          [
            `the server's share (RSS growth ${fmtBytes(m.serverRssBefore)} → ${fmtBytes(m.serverRssAfter)}, ÷ ${dens.count})`,
            fmtBytes(m.serverShare),
          ],
          [
            "**all of it on the host** (growth of the server's memory cgroup, which holds the containers' cgroups: user pages, page tables, kernel objects, ÷ count)",
            `**${fmtBytes(m.cgroupPerContainer)}**`,
          ],
          ['… beyond the shell itself', `**${fmtBytes(m.cgroupPerContainer - m.shellPss)}**`],
          ['host MemAvailable drop ÷ count (whole machine: noisy)', fmtBytes(m.memAvailablePerContainer)],
        ],
      ),
      '',
      'Create latency (POST → 201) as the count grows:',
      '',
      table(
        ['containers', 'p50', 'p99', 'min–max', 'n'],
        dens.deciles.map((d) => [`${d.from}–${d.to}`, fmtMs(d.median), fmtMs(d.p99), range(d), String(d.n)]),
      ),
      '',
    );
  } else if (r.densityError) push(`Not measured: ${r.densityError}`, '');

  // ---- 6. stats ----
  push('## 6. Stats sampling cost: server CPU with N idle containers sampled at 1 Hz', '');
  if (dens?.sampling) {
    const rowsCpu = [['0', pct(dens.idleCpu[0]), '–', '–', '–']];
    for (const [k, s] of Object.entries(dens.sampling).sort((a, b) => Number(a[0]) - Number(b[0]))) {
      rowsCpu.push([
        k,
        pct(s.cpuPercent),
        s.perContainerHz.toFixed(2),
        fmtMs(s.cpuMsPerSample),
        pct((s.cpuMsPerSample * Number(k)) / 10),
      ]);
    }
    push(
      table(
        [
          'N containers',
          'server CPU (% of one core)',
          'samples per container per second',
          'CPU ms per container per sample (minus the empty server)',
          'at 1 Hz for N (% of one core)',
        ],
        rowsCpu,
      ),
      '',
      `Each over a ${(r.config.cpuWindowMs / 1000).toFixed(0)} s window of the density run (nothing attached; the default 1 s period), CPU from /proc/PID/stat of the server, ` +
        'samples counted in the stats history of five of the containers. A server that cannot keep up samples less than once a second, so the last column is what 1 Hz would cost.',
      '',
    );
  }

  // ---- profile ----
  push('## What the profile says', '');
  push(r.profileNotes?.replace(/^## /gm, '### ') ?? '(no profile notes: bench/PROFILE.md is missing)', '');

  push('## Cleanup', '');
  push(
    r.leftovers.length === 0
      ? 'Verified at the end: no process, container, cgroup, state directory or mount of this run was left.'
      : `Left over (and removed by the bench): ${r.leftovers.join('; ')}`,
    '',
  );
  return out.join('\n');
}

/**
 * RESULTS.md with one section (it starts with `heading`) put in: replacing the one there,
 * else before "What the profile says" (or at the end).
 */
export function withSection(markdown, heading, section) {
  const body = section.endsWith('\n') ? section : `${section}\n`;
  const start = markdown.indexOf(heading);
  if (start >= 0) {
    const next = markdown.indexOf('\n## ', start + heading.length);
    return markdown.slice(0, start) + body + (next >= 0 ? `\n${markdown.slice(next + 1)}` : '');
  }
  const before = markdown.indexOf('\n## What the profile says');
  if (before >= 0) return `${markdown.slice(0, before + 1)}${body}\n${markdown.slice(before + 1)}`;
  return `${markdown.replace(/\n*$/, '\n\n')}${body}`;
}
