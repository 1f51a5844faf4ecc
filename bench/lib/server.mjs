// The playground server as a user runs it (`mdocker serve`, its own process, so its CPU
// and memory are its own), and a browser-like client: a session cookie, REST, terminal
// WebSockets that acknowledge output as xterm.js does.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { SERVE_NODE_FLAGS } from '../../server/dist/src/cli/serve.js';
import { processRef, sleep, withTimeout } from './util.mjs';

export const FLOW_ACK_EVERY_BYTES = 32 * 1024;
const CURSOR_QUERY = Buffer.from('\x1b[6n');

/** Flags that lift every cap a benchmark would hit; the rest are the product's defaults. */
export function uncappedFlags({ maxContainers = 2000 } = {}) {
  return [
    '--max-containers',
    String(maxContainers),
    '--max-containers-per-session',
    String(maxContainers),
    // Every client of the bench is on 127.0.0.1.
    '--max-containers-per-address',
    String(maxContainers),
    '--create-rate-per-session',
    '1000000',
    '--create-rate-per-ip',
    '1000000',
    '--spawn-rate-per-session',
    '1000000',
    '--api-rate-per-ip',
    '10000000',
    '--max-cpus',
    'none',
    '--idle-timeout',
    '0',
    '--max-lifetime',
    '0',
    '--shutdown-timeout',
    '180s',
  ];
}

/**
 * Starts `node server/dist/src/cli/main.js serve` on 127.0.0.1 with a free port and a state
 * root of its own; resolves once it prints its URL.
 */
export async function startMdockerServer({
  repo,
  logFile,
  stateRoot,
  extraArgs = [],
  nodeArgs = [],
  env = {},
  tracker,
}) {
  const fd = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      // Node's flags for the server, as `npm start` gives them, so serve does not exec itself again.
      ...SERVE_NODE_FLAGS,
      ...nodeArgs,
      join(repo, 'server/dist/src/cli/main.js'),
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--state-root',
      stateRoot,
      // Recordings of the bench's terminals: beside the state, removed with it.
      '--data-dir',
      `${stateRoot}-data`,
      ...extraArgs,
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, ...env, MDOCKER_STATE_ROOT: stateRoot } },
  );
  closeSync(fd);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  tracker?.add(child.pid, 'mdocker serve');
  const deadline = Date.now() + 60_000;
  let url = null;
  while (Date.now() < deadline && url === null) {
    const m = /mdocker playground: (http:\/\/\S+)/.exec(readFileSync(logFile, 'utf8'));
    if (m) url = m[1];
    else if (child.exitCode !== null) break;
    else await sleep(20);
  }
  if (url === null) {
    child.kill('SIGKILL');
    throw new Error(`mdocker serve did not start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
  }
  const ref = processRef(child.pid);
  return {
    pid: child.pid,
    ref,
    url: new URL(url),
    child,
    exited,
    /** SIGTERM: the server removes its containers and exits; SIGKILL after timeoutMs. */
    async stop(timeoutMs = 200_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      try {
        return await withTimeout(exited, timeoutMs, 'server shutdown');
      } catch {
        child.kill('SIGKILL');
        return { code: null, signal: 'SIGKILL', timedOut: true };
      }
    },
  };
}

/** One browser: its session cookie, its REST calls, its terminals. */
export class Browser {
  constructor(baseUrl) {
    this.base = baseUrl;
    this.cookie = null;
  }

  async open() {
    await this.request('GET', '/healthz');
    if (!this.cookie) throw new Error('the server set no session cookie');
    return this;
  }

  async request(method, path, body) {
    const headers = { Origin: this.base.origin };
    if (this.cookie) headers.Cookie = this.cookie;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(new URL(path, this.base), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = res.headers.getSetCookie?.() ?? [];
    for (const c of setCookie) if (c.startsWith('mdocker_session=')) this.cookie = c.split(';')[0];
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = new Error(`${method} ${path}: ${res.status} ${json?.error?.message ?? text.slice(0, 200)}`);
      err.status = res.status;
      err.body = json;
      throw err;
    }
    return json;
  }

  createContainer(body = {}) {
    return this.request('POST', '/api/containers', body);
  }

  deleteContainer(id) {
    return this.request('DELETE', `/api/containers/${id}`);
  }

  /** Attaches to a terminal as the web page does; see Terminal. */
  attach(containerId, terminalId = 0, { cols = 80, rows = 24 } = {}) {
    const url = new URL(`/api/containers/${containerId}/terminals/${terminalId}?cols=${cols}&rows=${rows}`, this.base);
    url.protocol = 'ws:';
    const ws = new WebSocket(url, {
      headers: { Cookie: this.cookie },
      origin: this.base.origin,
      perMessageDeflate: false,
    });
    return new Terminal(ws);
  }
}

/**
 * A terminal client: counts output bytes, acks every FLOW_ACK_EVERY_BYTES as the web
 * page does once xterm has written them (here: at once), and lets a caller wait for
 * output matching a predicate or for the exit message.
 */
export class Terminal {
  constructor(ws) {
    this.ws = ws;
    this.bytes = 0;
    this.frames = 0;
    this.unacked = 0;
    this.attached = false;
    this.exit = null;
    this.closed = null;
    this.text = '';
    this.keepText = true;
    this.answerCursorQueries = true;
    this.waiters = new Set();
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade refused: ${res.statusCode}`)));
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.#wake();
    });
  }

  #onMessage(data, isBinary) {
    if (!isBinary) {
      const msg = JSON.parse(String(data));
      if (msg.type === 'attached') this.attached = true;
      if (msg.type === 'exit') this.exit = msg;
      this.#wake();
      return;
    }
    this.bytes += data.length;
    this.frames++;
    this.unacked += data.length;
    if (this.keepText) this.text += data.toString('latin1');
    // busybox ash asks for the cursor position after its prompt (ESC [ 6 n); xterm.js
    // answers, so the client does too.
    if (this.answerCursorQueries && data.includes(CURSOR_QUERY) && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(Buffer.from('\x1b[7;5R'), { binary: true });
    }
    if (this.unacked >= FLOW_ACK_EVERY_BYTES && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'ack', bytes: this.unacked }));
      this.unacked = 0;
    }
    this.lastChunk = data;
    this.#wake();
  }

  #wake() {
    for (const w of [...this.waiters]) {
      if (w.test()) {
        this.waiters.delete(w);
        w.resolve();
      } else if (this.closed) {
        this.waiters.delete(w);
        w.reject(new Error(`terminal closed (${this.closed.code} ${this.closed.reason})`));
      }
    }
  }

  /** Resolves once test() holds; rejects on close or after timeoutMs. */
  until(test, timeoutMs, what) {
    if (test()) return Promise.resolve();
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { test, resolve, reject };
      this.waiters.add(waiter);
    });
    return withTimeout(p, timeoutMs, what).finally(() => this.waiters.delete(waiter));
  }

  send(bytes) {
    this.ws.send(Buffer.from(bytes), { binary: true });
  }

  close() {
    try {
      this.ws.close();
    } catch {
      // already closed
    }
  }

  terminate() {
    try {
      this.ws.terminate();
    } catch {
      // already gone
    }
  }
}

/** busybox sh's prompt as root: "/ # " (the banner before it has no "# "). */
export const hasPrompt = (text) => text.includes('# ');
