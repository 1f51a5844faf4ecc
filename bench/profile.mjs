#!/usr/bin/env node
// Profiles the playground server under one of the benchmark's loads, to say why a target
// is missed: `node --cpu-prof` on `mdocker serve`, then the functions with the most self
// time and the server's own functions with the most total time.
//
//   node bench/profile.mjs create|burst|throughput|stats|noisy|preview [N] [M]
//
// create: N sequential create→prompt→delete (default 100), with M idle containers made
// first (default 0); burst: N bursts (default 3) of M clients clicking at once (default 30),
// as the benchmark's "30 at once"; throughput: N MiB through one
// terminal (default 64); stats: N idle containers sampled for 20 s (default 300);
// noisy: N containers printing `yes` for 15 s with attached clients (default 50);
// preview: M GETs (default 8) of an N MiB file (default 50) through a container's preview.
// Profiles land in bench/work/profile/. Needs root, like the benchmark. Extra `mdocker serve`
// flags (e.g. "--stats-interval 3600s" to take the sampler out) come from PROFILE_SERVE_ARGS.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Browser, startMdockerServer, uncappedFlags } from './lib/server.mjs';
import { measureStartConcurrent, measureStartSequential, measureThroughput } from './lib/playground.mjs';
import { Tracker } from './lib/tracker.mjs';
import { cpuSeconds, rssBytes, sleep } from './lib/util.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(repo, 'bench/work');
const dir = join(work, 'profile');
const scenario = process.argv[2] ?? 'create';
const n = Number(
  process.argv[3] ?? { create: 100, burst: 3, throughput: 64, stats: 300, noisy: 50, preview: 50 }[scenario],
);

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const tracker = new Tracker();
const stateRoot = `/run/mdocker-bench-profile-${process.pid}`;
tracker.stateRoots.push(stateRoot);
const server = await startMdockerServer({
  repo,
  logFile: join(dir, 'serve.log'),
  stateRoot,
  extraArgs: [
    ...uncappedFlags({ maxContainers: Math.max(2000, n + 100) }),
    ...(process.env.PROFILE_SERVE_ARGS ?? '').split(' ').filter(Boolean),
  ],
  nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'],
  tracker,
});
tracker.noteServer(server.pid);
const deadlineAt = Date.now() + 10 * 60_000;
let cpu0;
let t0;
// The measured part, on the monotonic clock the profile's timestamps use (microseconds).
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
let windowUs = [0, Infinity];
try {
  if (scenario === 'create') {
    const background = Number(process.argv[4] ?? 0);
    if (background > 0) {
      const b = await new Browser(server.url).open();
      for (let i = 0; i < background; i++) tracker.addContainer(await b.createContainer({}));
      console.log(
        `${background} idle containers made first; server RSS ${(rssBytes(server.pid) / 1048576).toFixed(0)} MiB`,
      );
    }
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    const r = await measureStartSequential({ server, count: n, deadlineAt, tracker });
    console.log(
      `create→prompt p50 ${r.prompt.median.toFixed(1)} ms, POST p50 ${r.post.median.toFixed(1)} ms, n=${r.prompt.n}`,
    );
  } else if (scenario === 'burst') {
    const classSize = Number(process.argv[4] ?? 30);
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    const r = await measureStartConcurrent({ server, classSize, bursts: n, deadlineAt, tracker });
    console.log(
      `${n} bursts of ${classSize}: create→prompt p50 ${r.prompt.median.toFixed(0)} ms, p99 ${r.prompt.p99.toFixed(0)} ms, errors ${r.errorCount}`,
    );
  } else if (scenario === 'throughput') {
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    const r = await measureThroughput({ server, bytes: n * 1024 * 1024, timeoutMs: 300_000, tracker });
    console.log(`${r.MiBps.toFixed(1)} MiB/s, ${r.serverCpuSecondsPerGiB.toFixed(1)} server CPU s/GiB`);
  } else if (scenario === 'stats') {
    // A session per 100 containers, as in the density run (a session's network is a /24).
    let browser = null;
    for (let i = 0; i < n; i++) {
      if (i % 100 === 0) browser = await new Browser(server.url).open();
      tracker.addContainer(await browser.createContainer({}));
    }
    await sleep(2000);
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    await sleep(20_000);
    console.log(
      `${n} idle containers: server CPU ${(((cpuSeconds(server.pid) - cpu0) / 20) * 100).toFixed(1)} % of one core`,
    );
  } else if (scenario === 'noisy') {
    const neighbours = [];
    for (let i = 0; i < n; i++) {
      const b = await new Browser(server.url).open();
      const c = await b.createContainer({ cmd: ['/bin/sh', '-c', 'yes'] });
      tracker.addContainer(c);
      neighbours.push({ id: c.id, cookie: b.cookie });
    }
    const worker = new Worker(new URL('./lib/noisy-worker.mjs', import.meta.url), {
      workerData: { url: server.url.href, neighbours },
    });
    await new Promise((r) => worker.once('message', r));
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    await sleep(15_000);
    const bytes = await new Promise((r) => {
      worker.once('message', r);
      worker.postMessage('report');
    });
    console.log(
      `${n} noisy: ${(bytes.bytes / 15 / 1048576).toFixed(2)} MiB/s, server CPU ${(((cpuSeconds(server.pid) - cpu0) / 15) * 100).toFixed(1)} %`,
    );
    worker.postMessage('stop');
    await new Promise((r) => worker.once('exit', r));
  } else if (scenario === 'preview') {
    const gets = Number(process.argv[4] ?? 8);
    const browser = await new Browser(server.url).open();
    const c = await browser.createContainer({ memory: '256m', cpus: 2 });
    tracker.addContainer(c);
    const r = await browser.request('POST', `/api/containers/${c.id}/exec`, {
      cmd: [
        'sh',
        '-c',
        `mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/big bs=1048576 count=${n} 2>/dev/null && httpd -p 8000 -h /tmp/www`,
      ],
      timeoutMs: 60_000,
    });
    if (r.exitCode !== 0) throw new Error(`httpd: ${JSON.stringify(r).slice(0, 300)}`);
    let previewUrl = null;
    for (let i = 0; i < 100 && !previewUrl; i++) {
      const ports = await browser.request('GET', `/api/containers/${c.id}/ports`);
      previewUrl = ports.find((x) => x.port === 8000)?.previewUrl ?? null;
      if (!previewUrl) await sleep(100);
    }
    if (!previewUrl) throw new Error('port 8000 was never listed');
    const host = new URL(previewUrl).host;
    const get = () =>
      new Promise((resolveGet, rejectGet) => {
        const t = performance.now();
        const req = httpRequest(
          { host: '127.0.0.1', port: Number(server.url.port), path: '/big', headers: { Host: host }, agent: false },
          (res) => {
            let bytes = 0;
            res.on('data', (d) => (bytes += d.length));
            res.on('end', () => resolveGet({ bytes, ms: performance.now() - t }));
            res.on('error', rejectGet);
          },
        );
        req.on('error', rejectGet);
        req.end();
      });
    await get();
    cpu0 = cpuSeconds(server.pid);
    t0 = performance.now();
    windowUs = [nowUs(), Infinity];
    const rates = [];
    for (let i = 0; i < gets; i++) {
      const g = await get();
      if (g.bytes !== n * 1024 * 1024) throw new Error(`got ${g.bytes} bytes`);
      rates.push(g.bytes / 1048576 / (g.ms / 1000));
    }
    console.log(`${n} MiB through the preview, ${gets} GETs: ${rates.map((x) => x.toFixed(0)).join(' ')} MiB/s`);
    await browser.deleteContainer(c.id);
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  windowUs = [windowUs[0], nowUs()];
  console.log(
    `server CPU in the measured part: ${(cpuSeconds(server.pid) - cpu0).toFixed(2)} s over ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
} finally {
  await server.stop();
  const left = await tracker.verify();
  if (left.length) console.log(`left over: ${left.join('; ')}`);
}

// ---- the profile ----
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) {
  console.log('no .cpuprofile written');
  process.exit(1);
}
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map();
for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
const selfUs = new Map();
const samples = profile.samples;
// Only the samples taken in the measured part (the profile's clock is CLOCK_MONOTONIC too).
let at = profile.startTime;
for (let i = 0; i < samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0;
  if (at < windowUs[0] || at > windowUs[1]) continue;
  selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
const name = (node) => {
  const f = node.callFrame;
  const url = f.url
    .replace(/^file:\/\//, '')
    .replace(`${repo}/`, '')
    .replace(/.*node_modules\//, 'node_modules/');
  return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
};
const self = new Map();
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  self.set(name(node), (self.get(name(node)) ?? 0) + us);
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const top = (map, filter, count) =>
  [...map]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, us]) => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${k}`);
console.log(`\nprofile ${file}: ${(totalUs / 1e6).toFixed(1)} s sampled in the measured part (idle included)`);
console.log('\nself time, top 25:');
console.log(top(self, () => true, 25).join('\n'));
console.log("\ntotal time, the server's own functions (server/dist), top 25:");
console.log(top(inclusive, (k) => k.includes('server/dist/'), 25).join('\n'));
console.log('\ntotal time, dependencies, top 15:');
console.log(top(inclusive, (k) => k.includes('node_modules/'), 15).join('\n'));
