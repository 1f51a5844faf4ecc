// The playground's figures, against a real `mdocker serve`: create → prompt (sequential and
// a class at once), keystroke echo (idle and with noisy neighbours), terminal throughput,
// density and the cost of stats sampling.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Browser, hasPrompt } from './server.mjs';
import { cpuSeconds, meminfo, parentPid, rssBytes, sleep, smapsRollup, summarize, withTimeout } from './util.mjs';

const PROMPT_TIMEOUT_MS = 20_000;

/** POST create, attach terminal 0, first byte of the prompt. Leaves the container. */
async function createToPrompt(browser, body = {}) {
  const t0 = performance.now();
  const container = await browser.createContainer(body);
  const t1 = performance.now();
  const term = browser.attach(container.id);
  await term.opened;
  await term.until(() => hasPrompt(term.text), PROMPT_TIMEOUT_MS, 'prompt');
  const t2 = performance.now();
  return { container, term, postMs: t1 - t0, promptMs: t2 - t0 };
}

/**
 * count create → prompt → delete cycles, one after another. With `ready` (a warm pool),
 * each click waits until the pool is full again first, as clicks minutes apart do; the
 * wait is not part of the figure.
 */
export async function measureStartSequential({ server, count, deadlineAt, tracker, ready }) {
  const browser = await new Browser(server.url).open();
  const post = [];
  const prompt = [];
  const del = [];
  const errors = [];
  const cpu0 = cpuSeconds(server.pid);
  for (let i = 0; i < count && Date.now() < deadlineAt; i++) {
    try {
      if (ready) await ready();
      const r = await createToPrompt(browser);
      tracker.addContainer(r.container);
      post.push(r.postMs);
      prompt.push(r.promptMs);
      r.term.close();
      const t = performance.now();
      await browser.deleteContainer(r.container.id);
      del.push(performance.now() - t);
    } catch (err) {
      errors.push(String(err.message ?? err));
      if (errors.length >= 3) break;
    }
  }
  const serverCpuMsPerCycle = prompt.length ? ((cpuSeconds(server.pid) - cpu0) * 1000) / prompt.length : NaN;
  return { post: summarize(post), prompt: summarize(prompt), delete: summarize(del), serverCpuMsPerCycle, errors };
}

/** `class` browsers (one session each) click "new container" at the same moment. */
export async function measureStartConcurrent({ server, classSize, bursts, deadlineAt, tracker, ready }) {
  const browsers = await Promise.all(Array.from({ length: classSize }, () => new Browser(server.url).open()));
  const post = [];
  const prompt = [];
  const burstWallMs = [];
  const errors = [];
  const readyMs = [];
  for (let b = 0; b < bursts && Date.now() < deadlineAt; b++) {
    if (ready) {
      const r0 = performance.now();
      await ready();
      readyMs.push(performance.now() - r0);
    }
    const t0 = performance.now();
    const results = await Promise.allSettled(browsers.map((browser) => createToPrompt(browser)));
    burstWallMs.push(performance.now() - t0);
    const cleanup = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        tracker.addContainer(r.value.container);
        post.push(r.value.postMs);
        prompt.push(r.value.promptMs);
        r.value.term.close();
        cleanup.push(browsers[i].deleteContainer(r.value.container.id));
      } else {
        errors.push(String(r.reason?.message ?? r.reason));
      }
    });
    await Promise.allSettled(cleanup);
    // Containers whose create failed after the server counted them are removed by it.
    await sleep(200);
    if (errors.length > classSize) break;
  }
  return {
    classSize,
    post: summarize(post),
    prompt: summarize(prompt),
    burstWall: summarize(burstWallMs),
    refill: readyMs.length > 1 ? summarize(readyMs.slice(1)) : null,
    errors: errors.slice(0, 5),
    errorCount: errors.length,
  };
}

/**
 * One keystroke: 'x' sent → its echo back; then DEL to keep the line short. After each,
 * a WebSocket ping → pong on the same connection: the server's own share of the round
 * trip (its event loop and its turn on a CPU), without the pty and the container's shell.
 */
async function echoSamples(term, count, deadlineAt) {
  const rtt = [];
  const ping = [];
  for (let i = 0; i < count && Date.now() < deadlineAt; i++) {
    term.text = '';
    const t0 = performance.now();
    term.send('x');
    await term.until(() => term.text.includes('x'), 10_000, 'echo');
    rtt.push(performance.now() - t0);
    term.text = '';
    term.send('\x7f');
    await term.until(() => term.text.length > 0, 10_000, 'erase echo');
    // Keystrokes come apart in time; a little jitter keeps them off any timer's beat.
    await sleep(5 + Math.random() * 15);
    const t1 = performance.now();
    const pong = new Promise((resolve) => term.ws.once('pong', resolve));
    term.ws.ping();
    await withTimeout(pong, 10_000, 'pong');
    ping.push(performance.now() - t1);
    await sleep(5 + Math.random() * 15);
  }
  return { rtt, ping };
}

const NOISY_WORKER = new URL('./noisy-worker.mjs', import.meta.url);

export async function measureEcho({ server, samples, noisyCount, noisyCommand, deadlineAt, tracker }) {
  const out = {};
  const probeBrowser = await new Browser(server.url).open();
  const probe = await createToPrompt(probeBrowser);
  tracker.addContainer(probe.container);
  await sleep(300);
  // Idle: nothing else running on this server.
  const idle = await echoSamples(probe.term, samples, deadlineAt);
  out.idle = summarize(idle.rtt);
  out.idlePing = summarize(idle.ping);

  // Noisy: each neighbour a student of their own, watching their terminal print.
  const neighbours = [];
  const noisyBrowsers = [];
  const errors = [];
  for (let i = 0; i < noisyCount && Date.now() < deadlineAt; i++) {
    try {
      const browser = await new Browser(server.url).open();
      const container = await browser.createContainer({ cmd: ['/bin/sh', '-c', noisyCommand] });
      tracker.addContainer(container);
      neighbours.push({ id: container.id, cookie: browser.cookie });
      noisyBrowsers.push({ browser, id: container.id });
    } catch (err) {
      errors.push(String(err.message ?? err));
      if (errors.length >= 3) break;
    }
  }
  const worker = new Worker(NOISY_WORKER, { workerData: { url: server.url.href, neighbours } });
  const report = () =>
    withTimeout(
      new Promise((resolve) => {
        worker.once('message', resolve);
        worker.postMessage('report');
      }),
      10_000,
      'noisy clients report',
    );
  await withTimeout(new Promise((resolve) => worker.once('message', resolve)), 60_000, 'noisy clients attach');
  await sleep(1500); // let the output reach its steady rate
  const cpu0 = cpuSeconds(server.pid);
  const r0 = await report();
  const t0 = performance.now();
  const noisy = await echoSamples(probe.term, samples, deadlineAt + 60_000);
  out.noisy = summarize(noisy.rtt);
  out.noisyPing = summarize(noisy.ping);
  const seconds = (performance.now() - t0) / 1000;
  const r1 = await report();
  out.noisyServerCpuPercent = ((cpuSeconds(server.pid) - cpu0) / seconds) * 100;
  out.noisyOutputMiBps = (r1.bytes - r0.bytes) / seconds / (1024 * 1024);
  out.noisyFramesPerSecond = (r1.frames - r0.frames) / seconds;
  out.noisyBytesPerFrame = (r1.bytes - r0.bytes) / (r1.frames - r0.frames);
  out.noisyAttached = r1.attached;
  out.noisyCount = neighbours.length;
  out.errors = errors;
  worker.postMessage('stop');
  await withTimeout(new Promise((resolve) => worker.once('exit', resolve)), 10_000, 'noisy clients').catch(() =>
    worker.terminate(),
  );
  probe.term.close();
  await Promise.allSettled([
    probeBrowser.deleteContainer(probe.container.id),
    ...noisyBrowsers.map((n) => n.browser.deleteContainer(n.id)),
  ]);
  return out;
}

/**
 * 80-column lines (79 a's and a newline) until `bytes`, once a line is typed. With
 * `timeHead` (a `time` command), `head`, the process writing to the terminal, is run under
 * it and its CPU time is printed at the end.
 */
export function throughputScript(bytes, { timeHead = '' } = {}) {
  return `read go; yes ${'a'.repeat(79)} | ${timeHead ? `${timeHead} -p ` : ''}head -c ${bytes}`;
}

/**
 * A container writes `bytes` to its terminal once told to; the client reads and acks it all.
 * `image` and `script` (throughputScript's, another way) default to the image's busybox.
 */
export async function measureThroughput({ server, bytes, timeoutMs, tracker, cpus, image, script }) {
  const browser = await new Browser(server.url).open();
  const container = await browser.createContainer({
    cmd: ['/bin/sh', '-c', script ?? throughputScript(bytes)],
    cpus,
    ...(image === undefined ? {} : { image }),
  });
  tracker?.addContainer(container);
  const term = browser.attach(container.id);
  await term.opened;
  await term.until(() => term.attached, 10_000, 'attach');
  await sleep(200);
  term.keepText = false;
  term.answerCursorQueries = false;
  const cpu0 = cpuSeconds(server.pid);
  const client0 = process.cpuUsage();
  const bytes0 = term.bytes;
  const frames0 = term.frames;
  const t0 = performance.now();
  term.send('\r');
  let timedOut = false;
  try {
    await term.until(() => term.exit !== null || term.closed !== null, timeoutMs, 'throughput');
  } catch {
    timedOut = true;
  }
  const seconds = (performance.now() - t0) / 1000;
  const serverCpu = cpuSeconds(server.pid) - cpu0;
  const clientCpu = process.cpuUsage(client0);
  const received = term.bytes - bytes0;
  const frames = term.frames - frames0;
  term.close();
  await browser.deleteContainer(container.id).catch(() => undefined);
  return {
    bytesReceived: received,
    seconds,
    timedOut,
    MiBps: received / seconds / (1024 * 1024),
    serverCpuSeconds: serverCpu,
    serverCpuSecondsPerGiB: serverCpu / (received / 1024 ** 3),
    clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
    frames,
    bytesPerFrame: received / frames,
  };
}

/** CPU % of one core the server used over windowMs, while nothing else happens. */
async function serverCpuPercent(server, windowMs) {
  const c0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  await sleep(windowMs);
  return ((cpuSeconds(server.pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

function memoryCgroupUsage(pid) {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => /^\d+:memory:/.test(l));
  if (!line) return null;
  const path = line.split(':')[2];
  try {
    return Number(readFileSync(`/sys/fs/cgroup/memory${path}/memory.usage_in_bytes`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Idle shells until `target` or the first failure: create latency as the count grows,
 * memory per container, the server's idle CPU (stats sampling at 1 Hz) at checkpoints.
 */
/**
 * Containers per session in the density run: a session's containers share its network, a
 * /24 of 253 addresses, so a thousand come from ten sessions (ten students' worth each).
 */
const DENSITY_PER_SESSION = 100;

export async function measureDensity({ server, target, checkpoints, windowMs, deadlineAt, tracker, log }) {
  let browser = await new Browser(server.url).open();
  /** the session that made each container, for its stats */
  const owners = [];
  await sleep(1000);
  const before = {
    serverRss: rssBytes(server.pid),
    cgroupUsage: memoryCgroupUsage(server.pid),
    memAvailable: meminfo().MemAvailable,
  };
  const idleCpu = { 0: await serverCpuPercent(server, windowMs) };
  const sampling = {};
  /**
   * The server's CPU over a window, and how many samples it really took in it: a starved or
   * saturated server samples less than once a second, so CPU per sample is the honest cost.
   */
  const measureWindow = async (n) => {
    await sleep(1500);
    const from = Date.now();
    idleCpu[n] = await serverCpuPercent(server, windowMs);
    const to = Date.now();
    const probes = [...new Set([0, 0.25, 0.5, 0.75, 1].map((f) => Math.min(n - 1, Math.floor(f * (n - 1)))))];
    let samples = 0;
    for (const i of probes) {
      const history = await owners[i].request('GET', `/api/containers/${containers[i].id}/stats`).catch(() => null);
      samples += history?.samples?.filter((x) => x.t >= from && x.t <= to).length ?? 0;
    }
    const perContainerHz = samples / probes.length / ((to - from) / 1000);
    sampling[n] = {
      cpuPercent: idleCpu[n],
      perContainerHz,
      cpuMsPerSample: perContainerHz > 0 ? ((idleCpu[n] - idleCpu[0]) * 10) / (n * perContainerHz) : NaN,
    };
  };
  const createMs = [];
  const containers = [];
  let failure = null;
  let stoppedBy = 'target';
  while (containers.length < target) {
    if (Date.now() > deadlineAt) {
      stoppedBy = 'time';
      break;
    }
    if (containers.length > 0 && containers.length % DENSITY_PER_SESSION === 0) {
      browser = await new Browser(server.url).open();
    }
    const t0 = performance.now();
    let container;
    try {
      container = await browser.createContainer({});
    } catch (err) {
      failure = { at: containers.length + 1, message: String(err.message ?? err) };
      stoppedBy = 'failure';
      break;
    }
    createMs.push(performance.now() - t0);
    containers.push(container);
    owners.push(browser);
    tracker.addContainer(container);
    const n = containers.length;
    if (n % 100 === 0) log(`density: ${n} containers, last create ${createMs[n - 1].toFixed(1)} ms`);
    if (checkpoints.includes(n)) await measureWindow(n);
  }
  const n = containers.length;
  if (n > 0 && idleCpu[n] === undefined) await measureWindow(n);
  // Memory: launcher + init per container (PSS shares what they share), the server's
  // growth spread over them, and everything the host charged to the server's memory
  // cgroup (the containers' cgroups are below it; kernel objects included).
  let shellPss = 0;
  let launcherPss = 0;
  let measured = 0;
  for (const c of containers) {
    if (!c.initPid) continue;
    let launcher;
    try {
      launcher = parentPid(c.initPid);
    } catch {
      continue;
    }
    const a = smapsRollup(c.initPid, 'Pss');
    const b = smapsRollup(launcher, 'Pss');
    if (a === null || b === null) continue;
    shellPss += a;
    launcherPss += b;
    measured++;
  }
  const after = {
    serverRss: rssBytes(server.pid),
    cgroupUsage: memoryCgroupUsage(server.pid),
    memAvailable: meminfo().MemAvailable,
  };
  const deciles = [];
  for (let d = 0; d < 10; d++) {
    const from = Math.floor((d * n) / 10);
    const to = Math.floor(((d + 1) * n) / 10);
    if (to > from) deciles.push({ from: from + 1, to, ...summarize(createMs.slice(from, to)) });
  }
  return {
    count: n,
    target,
    stoppedBy,
    failure,
    create: summarize(createMs),
    deciles,
    idleCpu,
    sampling,
    memory: {
      measured,
      shellPss: measured ? shellPss / measured : NaN,
      launcherPss: measured ? launcherPss / measured : NaN,
      serverRssBefore: before.serverRss,
      serverRssAfter: after.serverRss,
      serverShare: n ? (after.serverRss - before.serverRss) / n : NaN,
      cgroupPerContainer:
        n && before.cgroupUsage !== null && after.cgroupUsage !== null
          ? (after.cgroupUsage - before.cgroupUsage) / n
          : NaN,
      memAvailablePerContainer: n ? (before.memAvailable - after.memAvailable) / n : NaN,
    },
    containerIds: containers.map((c) => c.id),
  };
}
