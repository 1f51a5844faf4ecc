// The classroom at N students (issue 18: "works for 60 students on one server"): a class on
// a real `mdocker serve`, N students who joined with its code, each typing commands into
// its own container's shell at human speed, and the server's CPU over windows with nobody
// watching, with the teacher's event stream subscribed, and with the teacher's console page
// open in Chromium, whose own CPU is measured too (CDP Performance.getMetrics).
import { withSection } from './report.mjs';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Browser, hasPrompt, startMdockerServer, uncappedFlags } from './server.mjs';
import {
  commandOutput,
  cpuSeconds,
  fmtBytes,
  fmtMs,
  fmtRatio,
  hostBusyPercent,
  hostCpu,
  loadavg,
  parentPid,
  sleep,
  summarize,
  withTimeout,
} from './util.mjs';

export const SECTION_HEADING = '## 7. Classroom: students typing, the teacher watching';
const CHROMIUM = process.env.BENCH_CHROMIUM ?? '/usr/bin/chromium';
const PROMPT_TIMEOUT_MS = 30_000;
/** Students set up this many at a time, as a class trickles in (and as the create path queues). */
const SETUP_BATCH = 10;
/** Short commands a beginner types in a first lesson; all busybox applets. */
const COMMANDS = [
  'ls /',
  'echo $RANDOM',
  'pwd',
  'date',
  'id',
  'uname -a',
  'hostname',
  'ls -l /etc',
  'echo hello',
  'ps',
  'whoami',
  'ls /bin | wc -l',
  'cat /etc/passwd',
  'free',
];
/** ~5 characters a second while typing (100–300 ms apart), then 0.2–1.2 s before the next command. */
const KEY_GAP_MS = [100, 300];
const THINK_MS = [200, 1200];
/** After each change of who watches, before the window opens: the page loads, the ticker starts. */
const SETTLE_MS = 5000;

const uniform = ([lo, hi]) => lo + Math.random() * (hi - lo);
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Flags for a server that lets N students from one address (the bench's) in. */
export function classroomFlags(students) {
  const lots = String(Math.max(100_000, students * 1000));
  return [
    ...uncappedFlags({ maxContainers: students + 50 }),
    '--max-students-per-class',
    String(students + 10),
    '--join-rate-per-ip',
    lots,
    '--upgrade-rate-per-ip',
    lots,
    '--max-sockets-per-address',
    String(students * 4 + 64),
  ];
}

// ---------------------------------------------------------------- the console page

/**
 * Builds the web UI with the teacher console into `work` (never web/dist, which its
 * engineers rebuild at any moment): by default from the committed tree (HEAD), so that
 * what is measured is a commit; `source: 'worktree'` builds the working tree instead.
 * Returns { webDir, source } or { skipped: why }.
 */
export function buildConsolePage({ repo, work, source = 'HEAD', log }) {
  const out = join(work, 'classroom-web');
  const commit = commandOutput('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']);
  let root = repo;
  if (source === 'HEAD') {
    const has = spawnSync('git', ['-C', repo, 'cat-file', '-e', 'HEAD:web/src/teacher/class-page.ts']);
    if (has.status !== 0)
      return { skipped: `the teacher console (web/src/teacher/class-page.ts) is not committed at ${commit}` };
    root = join(work, 'classroom-web-src');
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const tar = spawnSync('git', ['-C', repo, 'archive', '--format=tar', 'HEAD', 'web', 'server/src/protocol'], {
      maxBuffer: 256 * 1024 * 1024,
    });
    if (tar.status !== 0) return { skipped: `git archive failed: ${String(tar.stderr).slice(0, 300)}` };
    const untar = spawnSync('tar', ['-x', '-C', root], { input: tar.stdout });
    if (untar.status !== 0) return { skipped: `tar failed: ${String(untar.stderr).slice(0, 300)}` };
    // The copy's imports resolve to the repository's packages, not bench/work's (wetty's).
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'));
  } else if (!existsSync(join(repo, 'web/src/teacher/class-page.ts'))) {
    return { skipped: 'the working tree has no teacher console (web/src/teacher/class-page.ts)' };
  }
  log?.(`  building the web UI (${source === 'HEAD' ? `commit ${commit}` : 'working tree'}) into ${out}`);
  const build = spawnSync(
    'npx',
    ['vite', 'build', join(root, 'web'), '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'],
    { cwd: repo, encoding: 'utf8', timeout: 5 * 60_000 },
  );
  if (build.status !== 0 || !existsSync(join(out, 'index.html')))
    return { skipped: `the web build failed: ${(build.stderr || build.stdout || '').slice(-500)}` };
  return { webDir: out, source: source === 'HEAD' ? `commit ${commit}` : `the working tree at ${commit}` };
}

// ---------------------------------------------------------------- /proc helpers

function childrenByParent() {
  const map = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = parentPid(Number(name));
      if (!map.has(ppid)) map.set(ppid, []);
      map.get(ppid).push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Chromium's processes started by this one (Playwright spawns the browser as our child). */
function chromiumPids() {
  const kids = childrenByParent();
  const roots = (kids.get(process.pid) ?? []).filter((pid) => /chrom/i.test(comm(pid)));
  const out = [];
  const walk = (pid) => {
    out.push(pid);
    for (const child of kids.get(pid) ?? []) walk(child);
  };
  for (const root of roots) walk(root);
  return { roots, all: out };
}

/** Chromium's kind of process: browser, renderer, gpu-process, utility, zygote… */
function chromiumType(pid) {
  try {
    // Chromium rewrites its argv as one space-separated string (setproctitle).
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return /--type=(\S+)/.exec(cmdline)?.[1] ?? 'browser';
  } catch {
    return '?';
  }
}

function cpuOf(pids) {
  const out = new Map();
  for (const pid of pids) {
    try {
      out.set(pid, { seconds: cpuSeconds(pid), type: chromiumType(pid) });
    } catch {
      // exited
    }
  }
  return out;
}

/** CPU seconds the processes used between two snapshots (those born meanwhile: all of theirs), by type. */
function cpuDelta(before, after) {
  const byType = {};
  let total = 0;
  for (const [pid, { seconds, type }] of after) {
    const used = seconds - (before.get(pid)?.seconds ?? 0);
    byType[type] = (byType[type] ?? 0) + used;
    total += used;
  }
  return { total, byType };
}

/** The class's cgroup in the cpuacct hierarchy (v1), holding every student's container. */
function classCpuacctFile(serverPid, classId) {
  try {
    const line = readFileSync(`/proc/${serverPid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /^\d+:[^:]*\bcpuacct\b[^:]*:/.test(l));
    if (!line) return null;
    const controllers = line.split(':')[1];
    const file = join(
      '/sys/fs/cgroup',
      controllers,
      line.split(':')[2],
      'mdocker',
      `class-${classId}`,
      'cpuacct.usage',
    );
    return existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

function readNs(file) {
  try {
    return file ? Number(readFileSync(file, 'utf8')) : NaN;
  } catch {
    return NaN;
  }
}

/** Where the class's cgroup directories are, in every v1 hierarchy holding the server. */
function classCgroupDirs(serverCgroups, classId) {
  const dirs = [];
  for (const line of serverCgroups.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!controllers || path === undefined) continue;
    const hierarchy = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    dirs.push(join('/sys/fs/cgroup', hierarchy, path, 'mdocker', `class-${classId}`));
  }
  return dirs;
}

// ---------------------------------------------------------------- the students

/**
 * One student as the browser is: its own session (the join's cookie), its stats stream,
 * terminal 0 of its container attached and acking; types a command a key at a time.
 */
class Student {
  constructor(baseUrl, name) {
    this.browser = new Browser(baseUrl);
    this.name = name;
    this.keys = 0;
    this.commands = 0;
    this.pendingKeyAt = null;
    this.echoMs = null;
    this.stopped = false;
  }

  async join(code) {
    const t0 = performance.now();
    await this.browser.request('POST', '/api/join', { code, name: this.name });
    this.joinMs = performance.now() - t0;
    const t1 = performance.now();
    this.container = await this.browser.createContainer({});
    this.term = this.browser.attach(this.container.id);
    await this.term.opened;
    await this.term.until(() => hasPrompt(this.term.text), PROMPT_TIMEOUT_MS, `${this.name}'s prompt`);
    this.promptMs = performance.now() - t1;
    this.term.keepText = false;
    this.term.text = '';
    // The first output frame after a keystroke: its echo (the previous command's output is
    // over by then: a key comes at least 100 ms after the last).
    this.term.ws.on('message', (_data, isBinary) => {
      if (!isBinary || this.pendingKeyAt === null) return;
      this.echoMs?.push(performance.now() - this.pendingKeyAt);
      this.pendingKeyAt = null;
    });
    const url = new URL('/api/stats', this.browser.base);
    url.protocol = 'ws:';
    this.stats = new WebSocket(url, {
      headers: { Cookie: this.browser.cookie },
      origin: this.browser.base.origin,
      perMessageDeflate: false,
    });
    this.stats.on('error', () => undefined);
    await withTimeout(
      new Promise((resolve, reject) => {
        this.stats.once('open', resolve);
        this.stats.once('error', reject);
      }),
      10_000,
      `${this.name}'s stats stream`,
    );
  }

  /** Types until stop(): a command, a key at a time, Enter, a pause; starts after `delayMs`. */
  async type(delayMs) {
    await sleep(delayMs);
    while (!this.stopped) {
      const command = COMMANDS[Math.floor(Math.random() * COMMANDS.length)];
      for (const ch of `${command}\r`) {
        if (this.stopped || this.term.closed) return;
        this.pendingKeyAt = performance.now();
        this.term.send(ch);
        this.keys++;
        await sleep(uniform(KEY_GAP_MS));
      }
      this.commands++;
      await sleep(uniform(THINK_MS));
    }
  }

  close() {
    this.stopped = true;
    this.term?.close();
    try {
      this.stats?.close();
    } catch {
      // already closed
    }
  }
}

// ---------------------------------------------------------------- the teacher

/** The teacher's /api/classes/:id/events socket, counting what it receives by type. */
function openEventStream(teacher, classId) {
  const url = new URL(`/api/classes/${classId}/events`, teacher.base);
  url.protocol = 'ws:';
  const ws = new WebSocket(url, {
    headers: { Cookie: teacher.cookie },
    origin: teacher.base.origin,
    perMessageDeflate: false,
  });
  const stream = { ws, messages: 0, bytes: 0, byType: {} };
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    stream.messages++;
    stream.bytes += data.length;
    const type = JSON.parse(String(data)).type;
    const t = (stream.byType[type] ??= { messages: 0, bytes: 0 });
    t.messages++;
    t.bytes += data.length;
  });
  stream.opened = withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`events upgrade refused: ${res.statusCode}`)));
    }),
    10_000,
    'the teacher event stream',
  );
  stream.reset = () => {
    stream.messages = 0;
    stream.bytes = 0;
    stream.byType = {};
  };
  return stream;
}

/**
 * The teacher's console page in Chromium (Debian's, never a downloaded one), headless,
 * software rendering, at a laptop's 1920×1080; counts the WebSocket frames the page
 * receives (Playwright follows the Network domain anyway).
 */
async function openConsolePage({ baseUrl, classId, studentNames, tracker }) {
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  for (const pid of chromiumPids().roots) tracker.add(pid, 'chromium');
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  const frames = { messages: 0, bytes: 0, sockets: {} };
  page.on('websocket', (socket) => {
    const path = new URL(socket.url()).pathname;
    frames.sockets[path] = (frames.sockets[path] ?? 0) + 1;
    socket.on('framereceived', ({ payload }) => {
      frames.messages++;
      frames.bytes += typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    });
  });
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err.message ?? err).slice(0, 200)));
  const url = new URL(`/teacher/classes/${classId}`, baseUrl).href;
  await page.goto(url, { waitUntil: 'load' });
  // Every student's card is on the page (their names are unique), whatever its markup.
  const last = studentNames[studentNames.length - 1];
  let ready = true;
  try {
    await page.waitForFunction((name) => document.body.innerText.includes(name), last, {
      timeout: 30_000,
      polling: 500,
    });
  } catch {
    ready = false;
  }
  const cdp = await page.context().newCDPSession(page);
  // threadTicks: durations in the main thread's CPU time, not wall time (on a busy machine
  // a task's wall time counts the moments the thread waited for a core).
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  const metrics = async () =>
    Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  return {
    url,
    ready,
    frames,
    errors,
    metrics,
    version: browser.version(),
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------- the scenario

/**
 * Runs the whole scenario on a server of its own and stops it (SIGTERM) at the end.
 * Returns the figures, and `leftovers` (anything of the class still there after the end).
 */
export async function measureClassroom({
  repo,
  work,
  stateRoot,
  students: count,
  windowMs,
  tracker,
  log,
  rounds = 1,
  pageSource = 'HEAD',
  nodeArgs = [],
}) {
  const result = {
    students: count,
    windowMs,
    rounds,
    typing: {
      commands: COMMANDS,
      keyGapMs: KEY_GAP_MS,
      thinkMs: THINK_MS,
    },
    /** in the order measured: { condition, round, ... } */
    windows: [],
    leftovers: [],
    errors: [],
    machine: {
      cpuModel: cpus()[0]?.model ?? '?',
      nproc: availableParallelism(),
      memTotal: totalmem(),
      kernel: commandOutput('uname', ['-r']),
      node: process.version,
    },
    startedAt: new Date().toISOString(),
  };
  const page = buildConsolePage({ repo, work, source: pageSource, log });
  result.page = page.skipped ? { skipped: page.skipped } : { source: page.source };
  tracker.stateRoots.push(stateRoot);
  const server = await startMdockerServer({
    repo,
    logFile: join(work, 'serve-classroom.log'),
    stateRoot,
    extraArgs: [...classroomFlags(count), ...(page.webDir ? ['--web-dir', page.webDir] : [])],
    nodeArgs,
    tracker,
  });
  tracker.noteServer(server.pid);
  const serverCgroups = readFileSync(`/proc/${server.pid}/cgroup`, 'utf8');
  log(`  mdocker serve pid ${server.pid} at ${server.url.href}`);
  const teacher = await new Browser(server.url).open();
  const students = [];
  let klass = null;
  let stream = null;
  let consolePage = null;
  let typing = [];
  try {
    klass = await teacher.request('POST', '/api/classes', { name: `bench classroom of ${count}` });
    for (const dir of classCgroupDirs(serverCgroups, klass.id))
      tracker.cgroupParents.push(dir.split('/').slice(5).join('/'));
    const setup0 = performance.now();
    for (let i = 0; i < count; i += SETUP_BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(count, i + SETUP_BATCH); j++)
        batch.push(new Student(server.url, `Student ${String(j + 1).padStart(2, '0')}`));
      const settled = await Promise.allSettled(batch.map((s) => s.join(klass.joinCode)));
      settled.forEach((r, k) => {
        if (batch[k].container) tracker.addContainer(batch[k].container);
        if (r.status === 'fulfilled') students.push(batch[k]);
        else {
          result.errors.push(`${batch[k].name}: ${String(r.reason?.message ?? r.reason).slice(0, 200)}`);
          batch[k].close();
        }
      });
    }
    result.setup = {
      seconds: (performance.now() - setup0) / 1000,
      joined: students.length,
      join: summarize(students.map((s) => s.joinMs)),
      createToPrompt: summarize(students.map((s) => s.promptMs)),
    };
    log(
      `  ${students.length} of ${count} students joined and at their prompt in ${result.setup.seconds.toFixed(1)} s (create→prompt p50 ${fmtMs(result.setup.createToPrompt.median)} ms)`,
    );
    if (students.length === 0) throw new Error(`no student got a container: ${result.errors.slice(0, 3).join('; ')}`);
    const classCpuFile = classCpuacctFile(server.pid, klass.id);

    // Everyone types from now until the end; each starts at its own moment.
    typing = students.map((s) => s.type(Math.random() * 3000));
    await sleep(3000 + SETTLE_MS);

    /** One measured window: CPU of the server, the class's shells, this client, the host. */
    const measure = async (condition, round) => {
      for (const s of students) {
        s.echoMs = [];
        s.keys0 = s.keys;
        s.commands0 = s.commands;
      }
      stream?.reset();
      const pageFrames0 = consolePage ? { ...consolePage.frames } : null;
      const pageMetrics0 = consolePage ? await consolePage.metrics() : null;
      const chromium0 = consolePage ? cpuOf(chromiumPids().all) : null;
      const server0 = cpuSeconds(server.pid);
      const class0 = readNs(classCpuFile);
      const client0 = process.cpuUsage();
      const host0 = hostCpu();
      const t0 = performance.now();
      const mono0 = monotonicUs();
      await sleep(windowMs);
      const seconds = (performance.now() - t0) / 1000;
      const w = {
        condition,
        round,
        seconds,
        // CLOCK_MONOTONIC, as a `node --cpu-prof` profile's timestamps: a profile can be cut by window.
        monotonicUs: [mono0, monotonicUs()],
        serverCpuPercent: ((cpuSeconds(server.pid) - server0) / seconds) * 100,
        classShellsCpuPercent: ((readNs(classCpuFile) - class0) / 1e9 / seconds) * 100,
        clientCpuPercent: (() => {
          const c = process.cpuUsage(client0);
          return ((c.user + c.system) / 1e6 / seconds) * 100;
        })(),
        hostBusyPercent: hostBusyPercent(host0, hostCpu()),
        load: loadavg(),
        keysPerSecond: students.reduce((sum, s) => sum + s.keys - s.keys0, 0) / seconds,
        commandsPerSecond: students.reduce((sum, s) => sum + s.commands - s.commands0, 0) / seconds,
        echo: summarize(students.flatMap((s) => s.echoMs)),
        attached: students.filter((s) => s.term.closed === null).length,
      };
      if (stream) {
        w.teacherStream = {
          messagesPerSecond: stream.messages / seconds,
          bytesPerSecond: stream.bytes / seconds,
          byType: Object.fromEntries(
            Object.entries(stream.byType).map(([type, t]) => [
              type,
              { messagesPerSecond: t.messages / seconds, bytesPerSecond: t.bytes / seconds },
            ]),
          ),
        };
      }
      if (consolePage) {
        const m1 = await consolePage.metrics();
        const d = (key) => ((m1[key] - pageMetrics0[key]) / seconds) * 100;
        w.page = {
          taskPercent: d('TaskDuration'),
          scriptPercent: d('ScriptDuration'),
          layoutPercent: d('LayoutDuration'),
          recalcStylePercent: d('RecalcStyleDuration'),
          layoutsPerSecond: (m1.LayoutCount - pageMetrics0.LayoutCount) / seconds,
          jsHeapUsedBytes: m1.JSHeapUsedSize,
          domNodes: m1.Nodes,
          ...(() => {
            const used = cpuDelta(chromium0, cpuOf(chromiumPids().all));
            return {
              chromiumAllProcessesPercent: (used.total / seconds) * 100,
              chromiumByTypePercent: Object.fromEntries(
                Object.entries(used.byType).map(([type, cpu]) => [type, (cpu / seconds) * 100]),
              ),
            };
          })(),
          framesPerSecond: (consolePage.frames.messages - pageFrames0.messages) / seconds,
          bytesPerSecond: (consolePage.frames.bytes - pageFrames0.bytes) / seconds,
        };
      }
      result.windows.push(w);
      log(
        `  ${condition} ${round}: server ${w.serverCpuPercent.toFixed(1)} % of a core, shells ${w.classShellsCpuPercent.toFixed(1)} %, ` +
          `${w.keysPerSecond.toFixed(0)} keys/s, ${w.commandsPerSecond.toFixed(1)} commands/s, echo p50 ${fmtMs(w.echo.median)} p99 ${fmtMs(w.echo.p99)} ms` +
          (w.teacherStream
            ? `; teacher stream ${w.teacherStream.messagesPerSecond.toFixed(1)} msg/s ${fmtBytes(w.teacherStream.bytesPerSecond)}/s`
            : '') +
          (w.page
            ? `; page main thread ${w.page.taskPercent.toFixed(1)} % (script ${w.page.scriptPercent.toFixed(1)} %), all of Chromium ${w.page.chromiumAllProcessesPercent.toFixed(1)} %`
            : ''),
      );
    };

    // (a) nobody watching; (b) the teacher's event stream; (c) the console page; (a) again,
    // to see how much the machine drifted over the run.
    for (let round = 1; round <= rounds; round++) {
      await measure('noTeacher', round);
      stream = openEventStream(teacher, klass.id);
      await stream.opened;
      await sleep(SETTLE_MS);
      await measure('eventStream', round);
      stream.ws.close();
      stream = null;
      if (!page.webDir || result.page.error) continue;
      try {
        consolePage = await openConsolePage({
          baseUrl: server.url,
          classId: klass.id,
          studentNames: students.map((s) => s.name),
          tracker,
        });
        result.page.chromium = consolePage.version;
        result.page.url = consolePage.url.replace(server.url.origin, '');
        result.page.ready = consolePage.ready && (result.page.ready ?? true);
        result.page.sockets = consolePage.frames.sockets;
        await sleep(SETTLE_MS);
        await measure('consolePage', round);
        result.page.errors = consolePage.errors.slice(0, 5);
      } catch (err) {
        result.page.error = String(err.message ?? err).slice(0, 500);
        log(`  the console page: ${result.page.error}`);
      } finally {
        await consolePage?.close();
        consolePage = null;
      }
      await sleep(SETTLE_MS);
    }
    // Nobody watching once more: the machine's drift over the run shows between the first and this.
    await measure('noTeacher', rounds + 1);
  } catch (err) {
    // What was measured before the failure is kept, and said to be partial.
    result.error = String(err.message ?? err).slice(0, 500);
    log(`  classroom failed: ${err.stack ?? err}`);
  } finally {
    for (const s of students) s.stopped = true;
    await Promise.allSettled(typing);
    stream?.ws.close();
    await consolePage?.close();
    if (klass) {
      // Ending the class removes every student's container and the class's cgroup.
      const t0 = performance.now();
      await teacher.request('DELETE', `/api/classes/${klass.id}`).catch((err) => {
        result.errors.push(`ending the class: ${err.message}`);
      });
      result.endClassSeconds = (performance.now() - t0) / 1000;
    }
    for (const s of students) s.close();
    const stopped = await server.stop();
    if (stopped.timedOut) result.leftovers.push('the classroom server did not stop in time after SIGTERM: killed');
    if (klass)
      for (const dir of classCgroupDirs(serverCgroups, klass.id))
        if (existsSync(dir)) result.leftovers.push(`the class's cgroup ${dir}`);
    if (chromiumPids().all.length) result.leftovers.push('Chromium processes were still running');
    // The runtime keeps its groups/ directory (class cgroup records) as it keeps names/:
    // a record left in it is a class the server did not clean up; the empty directory is not.
    const groups = join(stateRoot, 'groups');
    if (existsSync(groups)) {
      const records = readdirSync(groups);
      if (records.length) result.leftovers.push(`group records in ${groups}: ${records.join(', ')}`);
      else rmSync(groups, { recursive: true, force: true });
    }
  }
  result.summary = summarizeConditions(result.windows);
  const mean = (condition) => result.summary[condition]?.serverCpuPercent.mean;
  result.baselineServerCpuPercent = mean('noTeacher');
  result.ratios = {
    eventStreamOverNoTeacher: mean('eventStream') / mean('noTeacher'),
    consolePageOverNoTeacher: mean('consolePage') / mean('noTeacher'),
    consolePageOverEventStream: mean('consolePage') / mean('eventStream'),
  };
  return result;
}

/** Per condition: each figure's mean, min and max over its windows. */
function summarizeConditions(windows) {
  const out = {};
  for (const condition of new Set(windows.map((w) => w.condition))) {
    const ws = windows.filter((w) => w.condition === condition);
    const figure = (get) => {
      const xs = ws.map(get).filter(Number.isFinite);
      return {
        mean: xs.reduce((a, b) => a + b, 0) / xs.length,
        min: Math.min(...xs),
        max: Math.max(...xs),
        n: xs.length,
      };
    };
    out[condition] = {
      serverCpuPercent: figure((w) => w.serverCpuPercent),
      classShellsCpuPercent: figure((w) => w.classShellsCpuPercent),
      echoP50Ms: figure((w) => w.echo.median),
      echoP99Ms: figure((w) => w.echo.p99),
      ...(ws[0].teacherStream
        ? {
            messagesPerSecond: figure((w) => w.teacherStream.messagesPerSecond),
            bytesPerSecond: figure((w) => w.teacherStream.bytesPerSecond),
          }
        : {}),
      ...(ws[0].page
        ? {
            pageTaskPercent: figure((w) => w.page.taskPercent),
            chromiumAllProcessesPercent: figure((w) => w.page.chromiumAllProcessesPercent),
          }
        : {}),
    };
  }
  return out;
}

// ---------------------------------------------------------------- the report

const pct = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} %` : '–');

/** The section of RESULTS.md for the classroom run `c`, with the run's versions `v`. */
export function renderClassroom(c, versions = {}) {
  const out = [SECTION_HEADING, ''];
  if (!c?.windows?.length) {
    out.push(`Not measured: ${c?.error ?? 'skipped'}`, '');
    return out.join('\n');
  }
  if (c.error) out.push(`**The run failed part way** (what follows is what it measured before): ${c.error}`, '');
  const sum = c.summary;
  const meanOf = (condition) => sum[condition]?.serverCpuPercent.mean;
  const spread = (f) => (f.n > 1 ? ` (${f.min.toFixed(1)}–${f.max.toFixed(1)})` : '');
  const watched = sum.consolePage ? 'consolePage' : sum.eventStream ? 'eventStream' : null;
  const limit = 20;
  const measured = watched ? meanOf(watched) : NaN;
  const verdict = !watched
    ? 'not measured'
    : measured <= limit
      ? `**met** (${(measured / limit).toFixed(2)} of the limit)`
      : `**missed** by ${((measured / limit - 1) * 100).toFixed(0)} %`;
  out.push(
    `Measured ${c.startedAt} by \`node bench/run.mjs classroom\` (bench/lib/classroom.mjs) on ${c.machine.cpuModel}, ${c.machine.nproc} CPUs, ` +
      `${fmtBytes(c.machine.memTotal)}, kernel ${c.machine.kernel}, node ${c.machine.node}; mdocker ${versions.mdocker ?? '?'}` +
      `${versions.dirty ? ` (working tree: ${versions.dirty})` : ''}${versions.stale ? ` (**${versions.stale}**)` : ''}; ` +
      `the console page: ${c.page.source ?? 'not built'}${c.page.chromium ? `, Chromium ${c.page.chromium}` : ''}.`,
    '',
    table(
      ['target (issue 18)', 'measured', 'result'],
      [
        [
          `teacher console, ${c.students} students typing: server CPU under ${limit} % of a core`,
          watched
            ? `${pct(measured)}${spread(sum[watched].serverCpuPercent)} with the ${watched === 'consolePage' ? 'console page open' : 'event stream alone (the page not measured)'}; nobody watching ${pct(meanOf('noTeacher'))}${spread(sum.noTeacher.serverCpuPercent)}`
            : '–',
          verdict,
        ],
      ],
    ),
    '',
  );
  const label = {
    noTeacher: '(a) nobody watching',
    eventStream: "(b) the teacher's event stream (a WebSocket client)",
    consolePage: '(c) the console page open in Chromium',
  };
  out.push(
    table(
      [
        'window',
        'server CPU (% of one core)',
        '÷ nobody watching (mean)',
        "students' shells (the class cgroup)",
        'bench client',
        'host busy (both cores)',
        'keys/s',
        'commands/s',
        'echo p50 / p99 ms',
        'load average',
      ],
      c.windows.map((x) => [
        `${label[x.condition]}, ${x.round > c.rounds ? 'at the end' : `round ${x.round}`}`,
        pct(x.serverCpuPercent),
        fmtRatio(x.serverCpuPercent / c.baselineServerCpuPercent),
        pct(x.classShellsCpuPercent),
        pct(x.clientCpuPercent),
        pct(x.hostBusyPercent),
        x.keysPerSecond.toFixed(0),
        x.commandsPerSecond.toFixed(1),
        `${fmtMs(x.echo.median)} / ${fmtMs(x.echo.p99)}`,
        x.load.map((l) => l.toFixed(1)).join(' '),
      ]),
    ),
    '',
  );
  const means = Object.entries(sum).map(
    ([condition, f]) =>
      `${label[condition].slice(0, 3)} ${pct(f.serverCpuPercent.mean)}${spread(f.serverCpuPercent)} over ${f.serverCpuPercent.n} window${f.serverCpuPercent.n === 1 ? '' : 's'}`,
  );
  const ratios = [];
  if (Number.isFinite(c.ratios.eventStreamOverNoTeacher))
    ratios.push(`event stream ÷ nobody watching **${fmtRatio(c.ratios.eventStreamOverNoTeacher)}**`);
  if (Number.isFinite(c.ratios.consolePageOverNoTeacher))
    ratios.push(`console page ÷ nobody watching **${fmtRatio(c.ratios.consolePageOverNoTeacher)}**`);
  if (Number.isFinite(c.ratios.consolePageOverEventStream))
    ratios.push(`console page ÷ event stream ${fmtRatio(c.ratios.consolePageOverEventStream)}`);
  const a = sum.noTeacher?.serverCpuPercent;
  const inNoise = ['eventStream', 'consolePage'].filter(
    (condition) =>
      a &&
      sum[condition] &&
      sum[condition].serverCpuPercent.mean >= a.min &&
      sum[condition].serverCpuPercent.mean <= a.max,
  );
  out.push(
    `Server CPU, mean (min–max): ${means.join('; ')}. Ratios of the means: ${ratios.join(', ') || '–'}.` +
      (inNoise.length
        ? ` The mean${inNoise.length > 1 ? 's' : ''} with ${inNoise.map((x) => label[x].slice(0, 3)).join(' and ')} ${inNoise.length > 1 ? 'lie' : 'lies'} within the spread of the (a) windows: ` +
          'what a teacher watching costs the server is below what this machine resolves from one window to the next.'
        : ''),
    '',
  );
  const streams = c.windows.filter((x) => x.teacherStream);
  if (streams.length) {
    const avg = (get) => streams.reduce((a, x) => a + get(x), 0) / streams.length;
    const types = [...new Set(streams.flatMap((x) => Object.keys(x.teacherStream.byType)))];
    const byType = types.map((type) => [
      type,
      avg((x) => x.teacherStream.byType[type]?.messagesPerSecond ?? 0),
      avg((x) => x.teacherStream.byType[type]?.bytesPerSecond ?? 0),
    ]);
    out.push(
      `What the teacher's event stream received in (b), mean of its windows: **${avg((x) => x.teacherStream.messagesPerSecond).toFixed(1)} messages/s, ` +
        `${fmtBytes(avg((x) => x.teacherStream.bytesPerSecond))}/s**; by type:`,
      '',
      table(
        ['type', 'messages/s', 'bytes/s', 'bytes per message'],
        byType
          .sort((x, y) => y[2] - x[2])
          .map(([type, messages, bytes]) => [
            `\`${type}\``,
            messages.toFixed(1),
            fmtBytes(bytes),
            fmtBytes(bytes / messages),
          ]),
      ),
      '',
    );
  }
  const pages = c.windows.filter((x) => x.page);
  if (pages.length) {
    const avg = (get) => pages.reduce((a, x) => a + get(x), 0) / pages.length;
    const last = pages[pages.length - 1].page;
    const types = [...new Set(pages.flatMap((x) => Object.keys(x.page.chromiumByTypePercent ?? {})))];
    out.push(
      `The console page in (c), mean of its windows, from CDP \`Performance.getMetrics\` deltas over each window (the renderer's main thread, in its own CPU time: \`timeDomain: threadTicks\`): ` +
        `**${pct(avg((x) => x.page.taskPercent))} of one core** in tasks${pages.length > 1 ? ` (${pages.map((x) => pct(x.page.taskPercent)).join(', ')})` : ''}, ` +
        `of which script ${pct(avg((x) => x.page.scriptPercent))}, layout ${pct(avg((x) => x.page.layoutPercent))}, ` +
        `style ${pct(avg((x) => x.page.recalcStylePercent))} (${avg((x) => x.page.layoutsPerSecond).toFixed(1)} layouts/s); the rest is paint, layer updates and commits. ` +
        `Every Chromium process together (utime+stime from /proc): **${pct(avg((x) => x.page.chromiumAllProcessesPercent))}**, ${types
          .map((type) => [type, avg((x) => x.page.chromiumByTypePercent?.[type] ?? 0)])
          .sort((x, y) => y[1] - x[1])
          .map(([type, x]) => `${type} ${pct(x)}`)
          .join(', ')}. ` +
        `It received ${avg((x) => x.page.framesPerSecond).toFixed(1)} WebSocket frames/s, ${fmtBytes(avg((x) => x.page.bytesPerSecond))}/s ` +
        `(sockets it opened: ${Object.entries(c.page.sockets ?? {})
          .map(([path, n]) => `\`${path.replace(/[0-9a-f]{16}/, ':id')}\`${n > 1 ? ` ×${n}` : ''}`)
          .join(', ')}); JS heap ${fmtBytes(last.jsHeapUsedBytes)}, ${last.domNodes} DOM nodes at the end. ` +
        `Headless Chromium (\`--disable-gpu\`: software compositing) at 1920×1080 on \`${c.page.url?.replace(/[0-9a-f]{16}/, ':id')}\`, launched for each (c) window and closed after it` +
        `${c.page.ready ? ', every student shown before the window opened' : ', **not every student was shown after 30 s**'}` +
        `${c.page.errors?.length ? `; page errors: ${c.page.errors.join('; ')}` : ''}.`,
      '',
    );
  } else {
    out.push(`(c) not measured: ${c.page.skipped ?? c.page.error ?? 'the page did not open'}.`, '');
  }
  out.push(
    `How: one \`mdocker serve\` on 127.0.0.1 (token-less: the local user is the teacher) with its per-address caps raised for ${c.students} students ` +
      'from one address, defaults otherwise (each container 256 MiB, 0.5 CPU, 256 pids; stats sampled at 1 Hz; every terminal recorded). ' +
      `The teacher creates a class (\`POST /api/classes\`); ${c.setup?.joined ?? 0} students join with its code (\`POST /api/join\`, a session each), ` +
      `${SETUP_BATCH} at a time, create a container and attach terminal 0 as the page does (acks every 32 KiB, answers the shell's cursor query), and open their \`/api/stats\` stream ` +
      `(join p50 ${fmtMs(c.setup?.join.median)} ms, create→prompt p50 ${fmtMs(c.setup?.createToPrompt.median)} ms, p99 ${fmtMs(c.setup?.createToPrompt.p99)} ms; all in ${c.setup?.seconds.toFixed(1)} s). ` +
      `Then each types short commands (${c.typing.commands.map((x) => `\`${x.replace(/\|/g, '\\|')}\``).join(', ')}) a key at a time, ` +
      `${c.typing.keyGapMs.join('–')} ms between keys (about 5 a second), Enter, ${c.typing.thinkMs.join('–')} ms before the next: staggered: measured, ${perStudent(c, 'keysPerSecond').toFixed(1)} keys/s and a command every ${(1 / perStudent(c, 'commandsPerSecond')).toFixed(1)} s per student. ` +
      `Windows of ${(c.windowMs / 1000).toFixed(0)} s, ${c.rounds} round${c.rounds === 1 ? '' : 's'} of (a), (b), (c), then (a) once more, each opened ${SETTLE_MS / 1000} s after the change of watchers; server CPU is utime+stime of its process (/proc/PID/stat, all its threads), ` +
      "the shells' from the class cgroup's cpuacct.usage, the client's is this bench's Node process (the students' sockets and the teacher's). " +
      'Echo: keystroke sent → the next output frame on that terminal. ' +
      `The machine has ${c.machine.nproc} cores for the server, ${c.setup?.joined ?? 0} shells, the bench client and Chromium together (and other engineers' work): ` +
      'in (c) Chromium takes its share of them, the server gets a core later and handles more per wake-up (the echo times rise), so its CPU in (c) may read lower than with the page on another machine; (b) ÷ (a) is the cleaner cost of a teacher watching. ' +
      `Ending the class took ${Number.isFinite(c.endClassSeconds) ? c.endClassSeconds.toFixed(1) : '–'} s; then the server stopped on SIGTERM.` +
      (c.errors.length ? ` Errors: ${c.errors.slice(0, 5).join('; ')}.` : '') +
      (c.leftovers.length ? ` **Left over**: ${c.leftovers.join('; ')}.` : ' Nothing of the class was left.'),
    '',
  );
  return out.join('\n');
}

/** A window figure per student, averaged over the windows. */
function perStudent(c, key) {
  return c.windows.reduce((sum, w) => sum + w[key], 0) / c.windows.length / (c.setup?.joined || c.students);
}

function table(header, rows) {
  const row = (cells) => `| ${cells.join(' | ')} |`;
  return [row(header), row(header.map(() => '---')), ...rows.map(row)].join('\n');
}

/** RESULTS.md with the classroom section put in (withSection). */
export function withClassroomSection(markdown, section) {
  return withSection(markdown, SECTION_HEADING, section);
}
