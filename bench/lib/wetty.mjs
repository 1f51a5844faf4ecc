// WeTTY (npm `wetty`, installed into bench/work) as the peer of the playground's
// terminals: its server spawns the command in a pty on the host (no container), streams
// it over socket.io, and pauses the pty until the client commits what it has written, as
// WeTTY's own page does (a commit per 256 KiB). Same client behaviour, same commands.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { cpuSeconds, processRef, sleep, summarize, withTimeout } from './util.mjs';

const WETTY_ACK_BYTES = 262144;

export function wettyVersion(work) {
  try {
    return JSON.parse(readFileSync(join(work, 'node_modules/wetty/package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `wetty --command COMMAND`; resolves once it listens, or with {skipped}. */
export async function startWetty({ work, command, logFile, tracker }) {
  const main = join(work, 'node_modules/wetty/build/main.js');
  if (!existsSync(main)) return { skipped: 'wetty is not installed in bench/work' };
  let io;
  try {
    ({ io } = createRequire(join(work, 'package.json'))('socket.io-client'));
  } catch (err) {
    return { skipped: `socket.io-client (a wetty dependency) cannot be loaded: ${err.message}` };
  }
  const port = await freePort();
  const fd = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [main, '--host', '127.0.0.1', '--port', String(port), '--base', '/wetty/', '--command', command],
    {
      cwd: work,
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  tracker.add(child.pid, 'wetty');
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'wetty exit').catch(() => child.kill('SIGKILL'));
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !/Server started/.test(readFileSync(logFile, 'utf8'))) {
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  if (!/Server started/.test(readFileSync(logFile, 'utf8'))) {
    await stop();
    return { skipped: `wetty did not start: ${readFileSync(logFile, 'utf8').slice(-600)}` };
  }
  return { pid: child.pid, ref: processRef(child.pid), port, io, stop, version: wettyVersion(work) };
}

/** One WeTTY page: socket.io over WebSocket, commits as WeTTY's client does. */
class WettyPage {
  constructor(wetty) {
    this.socket = wetty.io(`http://127.0.0.1:${wetty.port}`, {
      path: '/wetty/socket.io',
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    this.received = 0;
    this.frames = 0;
    this.uncommitted = 0;
    this.text = '';
    this.keepText = true;
    this.loggedIn = false;
    this.loggedOut = false;
    this.waiters = new Set();
    this.socket.on('login', () => {
      this.loggedIn = true;
      this.#wake();
    });
    for (const event of ['logout', 'disconnect', 'connect_error']) {
      this.socket.on(event, () => {
        this.loggedOut = true;
        this.#wake();
      });
    }
    this.socket.on('data', (data) => {
      this.received += Buffer.byteLength(data, 'utf8');
      this.frames++;
      if (this.keepText) this.text += data;
      this.uncommitted += data.length;
      while (this.uncommitted >= WETTY_ACK_BYTES) {
        this.uncommitted -= WETTY_ACK_BYTES;
        this.socket.emit('commit', WETTY_ACK_BYTES);
      }
      this.#wake();
    });
  }

  #wake() {
    for (const w of [...this.waiters]) {
      if (w.test()) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  until(test, ms, what) {
    if (test()) return Promise.resolve();
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { test, resolve };
      this.waiters.add(waiter);
    });
    return withTimeout(p, ms, what).finally(() => this.waiters.delete(waiter));
  }

  send(text) {
    this.socket.emit('input', text);
  }

  close() {
    this.socket.close();
  }
}

/** Page opened → first byte of the host shell's prompt ("# "): WeTTY's start, no container. */
export async function measureWettyStart(wetty, count, deadlineAt) {
  const ms = [];
  for (let i = 0; i < count && Date.now() < deadlineAt; i++) {
    const t0 = performance.now();
    const page = new WettyPage(wetty);
    try {
      await page.until(() => page.text.includes('# '), 20_000, 'wetty prompt');
      ms.push(performance.now() - t0);
    } finally {
      page.close();
    }
    await sleep(20);
  }
  return summarize(ms);
}

/** 'x' typed until its echo (the host shell's tty echoes it), then DEL. */
export async function measureWettyEcho(wetty, count, deadlineAt) {
  const page = new WettyPage(wetty);
  const rtt = [];
  try {
    await page.until(() => page.text.includes('# '), 20_000, 'wetty prompt');
    await sleep(300);
    for (let i = 0; i < count && Date.now() < deadlineAt; i++) {
      page.text = '';
      const t0 = performance.now();
      page.send('x');
      await page.until(() => page.text.includes('x'), 10_000, 'wetty echo');
      rtt.push(performance.now() - t0);
      page.text = '';
      page.send('\x7f');
      await page.until(() => page.text.length > 0, 10_000, 'wetty erase echo');
      await sleep(5 + Math.random() * 15);
    }
  } finally {
    page.close();
  }
  return summarize(rtt);
}

/** The throughput command, started by a newline; bytes and WeTTY's CPU until logout. */
export async function measureWettyThroughput(wetty, timeoutMs) {
  const page = new WettyPage(wetty);
  try {
    await page.until(() => page.loggedIn, 20_000, 'wetty login');
    await sleep(300);
    page.keepText = false;
    const received0 = page.received;
    const frames0 = page.frames;
    const cpu0 = cpuSeconds(wetty.pid);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    page.send('\r');
    let timedOut = false;
    try {
      await page.until(() => page.loggedOut, timeoutMs, 'wetty throughput');
    } catch {
      timedOut = true;
    }
    const seconds = (performance.now() - t0) / 1000;
    const serverCpu = cpuSeconds(wetty.pid) - cpu0;
    const clientCpu = process.cpuUsage(client0);
    const got = page.received - received0;
    return {
      bytesReceived: got,
      seconds,
      timedOut,
      MiBps: got / seconds / (1024 * 1024),
      serverCpuSeconds: serverCpu,
      serverCpuSecondsPerGiB: serverCpu / (got / 1024 ** 3),
      clientCpuSeconds: (clientCpu.user + clientCpu.system) / 1e6,
      frames: page.frames - frames0,
      bytesPerFrame: got / (page.frames - frames0),
    };
  } finally {
    page.close();
  }
}
