// issue 14's numbers: what a network costs at start, what two containers on one network
// carry between them (beside the host's loopback), and what a preview costs (beside a
// request from a neighbour on the container's network).
//
// Everything runs on loopback or inside namespaces this phase makes: the CLI's containers
// and networks live under a state root of their own (`<stateRoot>-net`, MDOCKER_STATE_ROOT)
// with their cgroups below the bench's cgroup parent; the preview's server has its own
// (`<stateRoot>-preview`). The tracker checks them all at the end.
import { withSection } from './report.mjs';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Browser, startMdockerServer, uncappedFlags } from './server.mjs';
import { fmtRatio, loadavg, summarize, sleep } from './util.mjs';

export const SECTION_HEADING = '## 8. Networks: start, container↔container, previews (issue 14)';
const MiB = 1024 * 1024;
const LAUNCHER_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const RUN_TIMEOUT_MS = 120_000;
const START_TARGET_MS = 3;

/** Spawns, bounded; resolves with code, stdout, stderr and the wall time in ms. */
function runTimed(file, args, { env = process.env, timeoutMs = RUN_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      if (stderr.length < 4000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: String(err), ms: performance.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, signal, stdout, stderr: stderr.trim(), ms: performance.now() - t0 });
    });
  });
}

/** busybox `time -f %e` prints seconds on the last line of stderr. */
function elapsedSeconds(stderr) {
  const m = /(\d+\.\d+)\s*$/.exec(stderr.trim());
  if (!m) throw new Error(`no time in ${JSON.stringify(stderr.slice(-300))}`);
  return Number(m[1]);
}

function rttAvg(text) {
  const m = /min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  if (!m) throw new Error(`no ping summary in ${JSON.stringify(text.slice(-300))}`);
  return { min: Number(m[1]), avg: Number(m[2]), max: Number(m[3]) };
}

export async function measureNetworks({ repo, work, stateRoot, cgroupParent, scale, tracker, log, deadlineAt }) {
  const netRoot = `${stateRoot}-net`;
  mkdirSync(netRoot, { recursive: true });
  const cliEnv = { ...process.env, MDOCKER_STATE_ROOT: netRoot };
  const cli = (args, opts = {}) =>
    runTimed(process.execPath, [join(repo, 'server/dist/src/cli/main.js'), ...args], { env: cliEnv, ...opts });
  const must = async (args, opts) => {
    const r = await cli(args, opts);
    if (r.code !== 0) throw new Error(`mdocker ${args.join(' ')}: exit ${r.code}: ${r.stderr.slice(-500)}`);
    return r;
  };
  const out = { load: { start: loadavg() }, config: scale, leftovers: [] };
  const networks = [];
  const containers = [];
  const cleanup = async () => {
    for (const name of containers.splice(0)) await cli(['rm', '-f', name]);
    for (const name of networks.splice(0)) {
      const r = await cli(['network', 'rm', name]);
      if (r.code !== 0) out.leftovers.push(`network rm ${name}: ${r.stderr.slice(-200)}`);
    }
  };

  try {
    // ------------------------------------------------ 1. start latency
    await must(['network', 'create', 'nb-start']);
    networks.push('nb-start');
    const runArgs = (net) => ['run', '--rm', '--network', net, '--cgroup-parent', cgroupParent, 'busybox', 'true'];
    const cliSamples = { none: [], network: [] };
    const cliErrors = [];
    for (let i = 0; i < 2; i++) for (const net of ['none', 'nb-start']) await cli(runArgs(net)); // warm-up
    for (let i = 0; i < scale.startRounds && Date.now() < deadlineAt - 240_000; i++) {
      // Interleaved, alternating which goes first.
      const order = i % 2 === 0 ? ['none', 'network'] : ['network', 'none'];
      for (const which of order) {
        const r = await cli(runArgs(which === 'none' ? 'none' : 'nb-start'));
        if (r.code === 0) cliSamples[which].push(r.ms);
        else cliErrors.push(r.stderr.slice(-200));
      }
    }
    out.cliStart = {
      none: summarize(cliSamples.none),
      network: summarize(cliSamples.network),
      errors: cliErrors.slice(0, 3),
    };
    log(
      `  mdocker run --rm true: none p50 ${out.cliStart.none.median.toFixed(1)} ms, network p50 ${out.cliStart.network.median.toFixed(1)} ms`,
    );

    // The runtime in-process (bench/lib/native.mjs's `mdocker` peer), with and without a network.
    const dist = (p) => pathToFileURL(join(repo, 'server/dist/src', p)).href;
    const { Runtime } = await import(dist('runtime/containers.js'));
    const runtime = await Runtime.open({ stateRoot: netRoot });
    const createToExit = async (network) => {
      const t0 = performance.now();
      const prepared = await runtime.create({
        image: 'busybox',
        cmd: ['/bin/true'],
        tty: false,
        limits: { memoryBytes: 64 * MiB, cpus: 0.5, pidsLimit: 64 },
        cgroupParent,
        autoRemove: true,
        dieWithParent: true,
        ...(network ? { network } : {}),
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
        throw new Error(
          `create→exit${network ? ' on a network' : ''}: exit ${code} ${error ? JSON.stringify(error) : stderr}`,
        );
      return ms;
    };
    const rtSamples = { none: [], network: [] };
    for (let i = 0; i < 3; i++) {
      await createToExit(null);
      await createToExit('nb-start');
    }
    for (let i = 0; i < scale.startRounds * 2 && Date.now() < deadlineAt - 200_000; i++) {
      const order = i % 2 === 0 ? ['none', 'network'] : ['network', 'none'];
      for (const which of order) rtSamples[which].push(await createToExit(which === 'none' ? null : 'nb-start'));
    }
    out.runtimeStart = { none: summarize(rtSamples.none), network: summarize(rtSamples.network) };
    log(
      `  runtime create→exit: none p50 ${out.runtimeStart.none.median.toFixed(2)} ms, network p50 ${out.runtimeStart.network.median.toFixed(2)} ms`,
    );

    // ------------------------------------------------ 2. container↔container vs the host's loopback
    await must(['network', 'create', 'nb-pair']);
    networks.push('nb-pair');
    const detached = async (name) => {
      containers.push(name);
      await must([
        'run',
        '-d',
        '--network',
        'nb-pair',
        '--name',
        name,
        '--hostname',
        name,
        '--cgroup-parent',
        cgroupParent,
        '-m',
        '256m',
        'busybox',
        'sleep',
        '100000',
      ]);
    };
    await detached('nb-a');
    await detached('nb-b');
    const bytes = scale.tcpBytes;
    const blocks = Math.round(bytes / 65536);
    // The listener's stdin: a fifo opened read-write never ends, so nc stops only when the sender closes.
    const listen = (port) => `mkfifo /tmp/in.${port} 2>/dev/null; nc -l -p ${port} <>/tmp/in.${port} | wc -c`;
    const send = (host, port) =>
      `time -f %e sh -c 'dd if=/dev/zero bs=65536 count=${blocks} 2>/dev/null | nc ${host} ${port}'`;
    // The sender starts once the listener listens: under load the listener's exec can take
    // longer than any fixed pause, and a refused sender would leave the listener waiting.
    const listening = (port) =>
      `i=0; until netstat -ltn | grep -q ':${port} '; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done`;
    const tcpRound = async (port, listener, sender, waitListening) => {
      const recv = listener(port);
      const w = await waitListening(port);
      if (w.code !== 0) throw new Error(`nc round: nothing listened on ${port}: ${w.stderr.slice(-200)}`);
      const s = await sender(port);
      const r = await recv;
      const got = Number(r.stdout.trim());
      if (s.code !== 0 || got !== blocks * 65536)
        throw new Error(
          `nc round: sender exit ${s.code} ${s.stderr.slice(-200)}; received ${r.stdout.trim()} ${r.stderr}`,
        );
      return (blocks * 65536) / MiB / elapsedSeconds(s.stderr);
    };
    const hostBusybox = '/usr/bin/busybox';
    const tcp = { container: [], host: [] };
    for (let i = 0; i < scale.tcpRounds; i++) {
      const port = 5000 + i;
      tcp.container.push(
        await tcpRound(
          port,
          (p) => cli(['exec', 'nb-a', 'sh', '-c', listen(p)]),
          (p) => cli(['exec', 'nb-b', 'sh', '-c', send('nb-a', p)]),
          (p) => cli(['exec', 'nb-a', 'sh', '-c', listening(p)]),
        ),
      );
      // The host's busybox, the same applets, on 127.0.0.1 (a port of the bench's range).
      const hostPort = 39000 + ((process.pid + i) % 1000);
      const bbDir = join(netRoot, 'hostbin');
      mkdirSync(bbDir, { recursive: true });
      const hostSh = (script) =>
        runTimed(hostBusybox, ['sh', '-c', script], {
          env: { PATH: bbDir, TMPDIR: netRoot },
        });
      if (i === 0)
        await runTimed(hostBusybox, [
          'sh',
          '-c',
          `for a in sh nc dd wc time mkfifo rm netstat grep sleep; do ln -sf ${hostBusybox} ${bbDir}/$a; done`,
        ]);
      tcp.host.push(
        await tcpRound(
          hostPort,
          (p) =>
            hostSh(
              `rm -f ${netRoot}/in.${p}; mkfifo ${netRoot}/in.${p}; nc -l -p ${p} <>${netRoot}/in.${p} | wc -c; rm -f ${netRoot}/in.${p}`,
            ),
          (p) => hostSh(send('127.0.0.1', p)),
          (p) => hostSh(listening(p)),
        ),
      );
    }
    out.tcp = {
      bytes: blocks * 65536,
      container: summarize(tcp.container),
      host: summarize(tcp.host),
      containerSamples: tcp.container,
      hostSamples: tcp.host,
    };
    log(
      `  nc ${fmtMiB(out.tcp.bytes)}: container↔container p50 ${out.tcp.container.median.toFixed(0)} MiB/s, host loopback p50 ${out.tcp.host.median.toFixed(0)} MiB/s`,
    );
    const pingCmd = `ping -c ${scale.pingCount} -i 0.2`;
    const pc = await must(['exec', 'nb-b', 'sh', '-c', `${pingCmd} nb-a`]);
    const ph = await runTimed(hostBusybox, ['sh', '-c', `${hostBusybox} ${pingCmd} 127.0.0.1`]);
    out.ping = { count: scale.pingCount, container: rttAvg(pc.stdout), host: rttAvg(ph.stdout) };
    log(`  ping avg: container↔container ${out.ping.container.avg} ms, host loopback ${out.ping.host.avg} ms`);
    await cleanup();
    rmSync(join(netRoot, 'hostbin'), { recursive: true, force: true });

    // ------------------------------------------------ 3. previews
    out.preview = await measurePreview({ repo, work, stateRoot, scale, tracker, log }).catch((err) => ({
      error: String(err.message ?? err),
    }));
  } finally {
    await cleanup();
  }
  out.load.end = loadavg();
  return out;
}

function fmtMiB(bytes) {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

/** One GET on a fresh connection (no keep-alive, as a browser's first request); resolves with ms and bytes. */
function getOnce(port, host, path) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host }, agent: false }, (res) => {
      let n = 0;
      res.on('data', (d) => (n += d.length));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${host}${path}: ${res.statusCode}`));
        else resolve({ ms: performance.now() - t0, bytes: n });
      });
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function measurePreview({ repo, work, stateRoot, scale, tracker, log }) {
  const root = `${stateRoot}-preview`;
  const server = await startMdockerServer({
    repo,
    logFile: join(work, 'serve-preview.log'),
    stateRoot: root,
    extraArgs: uncappedFlags(),
    tracker,
  });
  tracker.noteServer(server.pid);
  const p = { requests: scale.httpRequests, bigBytes: scale.bigBytes, bigRepeat: scale.bigRepeat };
  try {
    const browser = await new Browser(server.url).open();
    const a = await browser.createContainer({ hostname: 'web', memory: '256m', cpus: 2 });
    tracker.addContainer(a);
    const b = await browser.createContainer({ hostname: 'client', memory: '256m', cpus: 2 });
    tracker.addContainer(b);
    const exec = async (id, script, timeoutMs = 60_000) => {
      const r = await browser.request('POST', `/api/containers/${id}/exec`, { cmd: ['sh', '-c', script], timeoutMs });
      if (r.exitCode !== 0 || r.timedOut)
        throw new Error(`exec ${script.slice(0, 80)}: ${JSON.stringify(r).slice(0, 400)}`);
      return r;
    };
    const bigBlocks = Math.round(scale.bigBytes / MiB);
    await exec(
      a.id,
      `mkdir -p /tmp/www && echo '<!doctype html><title>hi</title><p>hello from the container</p>' > /tmp/www/index.html && dd if=/dev/zero of=/tmp/www/big bs=1048576 count=${bigBlocks} 2>/dev/null && httpd -p 8000 -h /tmp/www`,
    );
    let previewUrl = null;
    const until = Date.now() + 10_000;
    while (!previewUrl && Date.now() < until) {
      const ports = await browser.request('GET', `/api/containers/${a.id}/ports`);
      previewUrl = ports.find((x) => x.port === 8000)?.previewUrl ?? null;
      if (!previewUrl) await sleep(100);
    }
    if (!previewUrl) throw new Error('port 8000 was never listed');
    const url = new URL(previewUrl);
    const hostHeader = url.host;
    const port = Number(server.url.port);
    const aInfo = await browser.request('GET', `/api/containers/${a.id}`);
    const aIp = aInfo.network?.ip;
    if (!aIp) throw new Error(`container ${a.id} has no network address: ${JSON.stringify(aInfo.network)}`);
    p.network = aInfo.network.name;

    // Node's client on the host through the preview: every request on a connection of its own.
    for (let i = 0; i < 5; i++) await getOnce(port, hostHeader, '/index.html');
    const small = [];
    for (let i = 0; i < scale.httpRequests; i++) small.push((await getOnce(port, hostHeader, '/index.html')).ms);
    p.nodeSmall = summarize(small);
    const big = [];
    for (let i = 0; i < scale.bigRounds; i++) {
      const r = await getOnce(port, hostHeader, '/big');
      if (r.bytes !== bigBlocks * MiB) throw new Error(`big file: ${r.bytes} bytes`);
      big.push(r.bytes / MiB / (r.ms / 1000));
    }
    p.nodeBigMiBps = summarize(big);

    // The same busybox wget loops: the host's through the preview, the neighbour's straight to the container.
    const n = scale.httpRequests;
    const loop = (wget, target, count) =>
      `time -f %e sh -c 'i=0; while [ $i -lt ${count} ]; do ${wget} -q -O /dev/null ${target} || exit 1; i=$((i+1)); done'`;
    const host = async (script) => {
      const r = await runTimed('/usr/bin/busybox', ['sh', '-c', script], { env: { PATH: '/usr/bin:/bin' } });
      if (r.code !== 0) throw new Error(`host ${script.slice(0, 80)}: ${r.stderr.slice(-300)}`);
      return elapsedSeconds(r.stderr);
    };
    const hostWget = `busybox wget --header "Host: ${hostHeader}"`;
    const viaPreview = (path) => `http://127.0.0.1:${port}${path}`;
    const direct = (path) => `http://${aIp}:8000${path}`;
    const pairs = { smallPreview: [], smallDirect: [], bigPreview: [], bigDirect: [] };
    for (let r = 0; r < scale.wgetRounds; r++) {
      pairs.smallPreview.push(((await host(loop(hostWget, viaPreview('/index.html'), n))) * 1000) / n);
      pairs.smallDirect.push(
        (elapsedSeconds((await exec(b.id, loop('wget', direct('/index.html'), n))).stderr) * 1000) / n,
      );
      pairs.bigPreview.push(
        (bigBlocks * scale.bigRepeat) / (await host(loop(hostWget, viaPreview('/big'), scale.bigRepeat))),
      );
      pairs.bigDirect.push(
        (bigBlocks * scale.bigRepeat) /
          elapsedSeconds((await exec(b.id, loop('wget', direct('/big'), scale.bigRepeat))).stderr),
      );
    }
    p.wget = Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, { ...summarize(v), samples: v }]));
    log(
      `  preview: node GET p50 ${p.nodeSmall.median.toFixed(2)} ms; wget per request preview ${p.wget.smallPreview.median.toFixed(2)} ms vs direct ${p.wget.smallDirect.median.toFixed(2)} ms; ${fmtMiB(scale.bigBytes)} preview ${p.wget.bigPreview.median.toFixed(0)} MiB/s vs direct ${p.wget.bigDirect.median.toFixed(0)} MiB/s`,
    );
    await browser.deleteContainer(a.id);
    await browser.deleteContainer(b.id);
  } finally {
    const r = await server.stop();
    if (r.timedOut) p.leftover = 'the preview server did not stop in time after SIGTERM: killed';
  }
  return p;
}

// ---------------------------------------------------------------- markdown

const ms = (x, d = 2) => (Number.isFinite(x) ? `${x.toFixed(d)} ms` : '–');
const mibps = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} MiB/s` : '–');

export function renderNetworks(n, versions = {}) {
  const L = [SECTION_HEADING, ''];
  if (!n || n.error) {
    L.push(`Not measured: ${n?.error ?? 'skipped'}.`, '');
    return L.join('\n');
  }
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '?');
  L.push(
    `\`node bench/run.mjs networks\` (${n.config.startRounds} start rounds; ${versions.mdocker ?? ''}, ${n.at ?? ''}). Load average ${load(n.load.start)} at the start, ${load(n.load.end)} at the end, on 2 cores shared with other engineers' test runs: absolute times move with it, the interleaved pairs much less.`,
    '',
    '### Start: a network beside `none` (target: under 3 ms more at the median)',
    '',
    'Interleaved rounds, alternating which goes first; `true` in busybox with the default limits.',
    '',
    '| what | none: median | p90 | on a network: median | p90 | difference at the median | target |',
    '|---|---|---|---|---|---|---|',
  );
  const startRow = (what, s, d) => {
    const diff = s.network.median - s.none.median;
    const diff90 = s.network.p90 - s.none.p90;
    L.push(
      `| ${what} (n=${s.none.n}+${s.network.n}) | ${ms(s.none.median, d)} | ${ms(s.none.p90, d)} | ${ms(s.network.median, d)} | ${ms(s.network.p90, d)} | **${diff >= 0 ? '+' : ''}${diff.toFixed(2)} ms** (p90 ${diff90 >= 0 ? '+' : ''}${diff90.toFixed(2)} ms) | ${diff < START_TARGET_MS ? 'met' : `missed by ${(diff - START_TARGET_MS).toFixed(2)} ms`} |`,
    );
  };
  if (n.cliStart)
    startRow('`mdocker run --rm --network NAME\\|none busybox true`: the whole CLI process', n.cliStart, 1);
  if (n.runtimeStart)
    startRow(
      "the runtime in-process: `Runtime.create` → mdocker-init → exited (as section 1's `mdocker` row)",
      n.runtimeStart,
      2,
    );
  L.push('');
  if (n.cliStart?.errors?.length) L.push(`Failed runs: ${n.cliStart.errors.map((e) => `\`${e}\``).join('; ')}`, '');
  if (n.tcp) {
    L.push(
      "### Container ↔ container on one network, beside the host's loopback",
      '',
      `Two detached containers on one network (\`mdocker network create\`, \`mdocker run -d --network\`); the image's busybox \`nc\`: \`dd if=/dev/zero bs=65536 | nc PEER PORT\` into \`nc -l | wc -c\` (${fmtMiB(n.tcp.bytes)}, timed by \`time\` around the sender, the receiver's count checked), ${n.tcp.container.n} rounds; \`ping -c ${n.ping.count} -i 0.2\` by hostname. The host: its own busybox (same version) on 127.0.0.1.`,
      '',
      "| | container ↔ container (veth, bridge in the network's namespace) | host loopback | ratio |",
      '|---|---|---|---|',
      `| TCP throughput, busybox nc (median; min–max) | ${mibps(n.tcp.container.median)} (${mibps(n.tcp.container.min)}–${mibps(n.tcp.container.max)}) | ${mibps(n.tcp.host.median)} (${mibps(n.tcp.host.min)}–${mibps(n.tcp.host.max)}) | ${fmtRatio(n.tcp.container.median / n.tcp.host.median)} |`,
      `| ping RTT avg (min / max) | ${ms(n.ping.container.avg, 3)} (${n.ping.container.min} / ${n.ping.container.max}) | ${ms(n.ping.host.avg, 3)} (${n.ping.host.min} / ${n.ping.host.max}) | ${fmtRatio(n.ping.container.avg / n.ping.host.avg)} |`,
      '',
    );
  }
  const p = n.preview;
  if (p) {
    L.push("### Previews, beside a request from a neighbour on the container's network", '');
    if (p.error) L.push(`Not measured: ${p.error}.`, '');
    else {
      L.push(
        `\`mdocker serve\`; a session's two containers (256 MiB, 2 CPUs each) on its network; busybox \`httpd -p 8000 -h /tmp/www\` in the first (started with the exec route), a ${'small'} page (61 bytes) and a ${fmtMiB(p.bigBytes)} file. Through the preview: a client on the host connects to 127.0.0.1 with the preview's \`Host\` (\`<token>-8000.preview.localhost:<port>\`), and the server opens its socket inside the container's namespace. Direct: the second container's busybox \`wget\` to the first's address. The busybox loops time ${p.requests} GETs (a process and a connection each, so mostly wget's own start) or the big file ${p.bigRepeat} times, ${p.wget.smallPreview.n} rounds, medians.`,
        '',
        '| | through the preview | direct (neighbour → container) | preview ÷ direct |',
        '|---|---|---|---|',
        `| small page, busybox wget, per request | ${ms(p.wget.smallPreview.median)} | ${ms(p.wget.smallDirect.median)} | ${fmtRatio(p.wget.smallPreview.median / p.wget.smallDirect.median)} (+${(p.wget.smallPreview.median - p.wget.smallDirect.median).toFixed(2)} ms) |`,
        `| ${fmtMiB(p.bigBytes)} file, busybox wget | ${mibps(p.wget.bigPreview.median)} | ${mibps(p.wget.bigDirect.median)} | ${fmtRatio(p.wget.bigPreview.median / p.wget.bigDirect.median)} |`,
        `| small page, Node's client on the host, per request on a fresh connection (n=${p.nodeSmall.n}) | median ${ms(p.nodeSmall.median)}, p90 ${ms(p.nodeSmall.p90)}, p99 ${ms(p.nodeSmall.p99)} | | |`,
        `| ${fmtMiB(p.bigBytes)} file, Node's client on the host (n=${p.nodeBigMiBps.n}) | ${mibps(p.nodeBigMiBps.median)} (${mibps(p.nodeBigMiBps.min)}–${mibps(p.nodeBigMiBps.max)}) | | |`,
        '',
      );
    }
  }
  if (n.leftovers?.length) L.push(`Left over (cleaned up): ${n.leftovers.join('; ')}`, '');
  return L.join('\n');
}

/** RESULTS.md with the networks section put in (withSection). */
export function withNetworksSection(markdown, section) {
  return withSection(markdown, SECTION_HEADING, section);
}
