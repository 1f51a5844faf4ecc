#!/usr/bin/env node
// A stand-in for the playground server, for front-end work without root or containers:
// `node web/dev/mock-server.mjs [--port 8080] [--csp strict|helmet]` serves web/dist and
// fakes the API of server/src/api/protocol.ts with pretend containers whose "shell"
// knows a handful of commands (echo $$, hostname, yes, the fork loop, exit). It is not
// the server: never test the product against it; e2e/ runs the real one.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(arg('--port', '8080'));
const cspMode = arg('--csp', 'helmet');
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

// helmet's default policy, and a stricter one that refuses inline styles too.
const CSP = {
  helmet:
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
  strict:
    "default-src 'self';img-src 'self' data:;object-src 'none';script-src 'self';style-src 'self';connect-src 'self'",
};

const FLOW_HIGH = 512 * 1024;
const FLOW_LOW = 128 * 1024;
let nextId = 1;
const containers = new Map();

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
const error = (res, status, code, message) => json(res, status, { error: { code, message } });

function parseMemory(v) {
  if (v === undefined) return 64 * 1024 * 1024;
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(String(v).trim());
  if (!m) return null;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

function toJson(c) {
  const { terminals, samples: _samples, ...rest } = c;
  return {
    ...rest,
    terminals: [...terminals.values()].map((t) => ({
      id: t.id,
      containerId: c.id,
      cmd: t.cmd,
      cols: t.cols,
      rows: t.rows,
      state: t.state,
      exitCode: t.exitCode,
      clients: t.clients.size,
    })),
  };
}

function createTerminal(c, id) {
  const t = {
    id,
    cmd: ['/bin/sh'],
    cols: 80,
    rows: 24,
    state: 'running',
    exitCode: null,
    clients: new Set(),
    transcript: '',
    line: '',
    yes: null,
    unacked: new Map(),
    vars: {},
    status: 0,
  };
  c.terminals.set(id, t);
  write(c, t, `\r\nBusyBox v1.36.1 built-in shell (ash) [mock]\r\n\r\n${prompt()}`);
  return t;
}

const prompt = () => '/ # ';

function write(c, t, text) {
  t.transcript = (t.transcript + text).slice(-64 * 1024);
  const buf = Buffer.from(text);
  for (const ws of t.clients) {
    ws.send(buf);
    t.unacked.set(ws, (t.unacked.get(ws) ?? 0) + buf.length);
  }
}

function paused(t) {
  for (const n of t.unacked.values()) if (n > FLOW_HIGH) return true;
  return false;
}

function expand(c, t, text) {
  return text
    .replace(/\$\(\((.+?)\)\)/g, (_, expr) =>
      /^[\d\s+\-*/()]+$/.test(expr) ? String(Math.trunc(Function(`return (${expr})`)())) : '0',
    )
    .replace(/\$\(id -u\)/g, '0')
    .replace(/\$\(hostname\)/g, c.hostname)
    .replace(/\$\$/g, t.id === 0 ? '1' : '7')
    .replace(/\$\?/g, String(t.status ?? 0))
    .replace(/\$([A-Za-z_]\w*)/g, (_, name) => t.vars[name] ?? '')
    .replace(/["']/g, '');
}

function runCommand(c, t, line) {
  let out = '';
  for (const part of line.split(';').map((s) => s.trim())) {
    const cmd = part;
    const assign = /^([A-Za-z_]\w*)=(\S*)$/.exec(cmd);
    if (assign) {
      t.vars[assign[1]] = expand(c, t, assign[2]);
    } else if (cmd.startsWith('echo ')) {
      out += `${expand(c, t, cmd.slice(5))}\r\n`;
    } else if (cmd === 'hostname') {
      out += `${c.hostname}\r\n`;
    } else if (cmd === 'yes') {
      t.yes = setInterval(() => {
        if (!paused(t)) write(c, t, 'y\r\n'.repeat(2000));
      }, 5);
      return;
    } else if (cmd.startsWith('for i in')) {
      const n = Number(/seq 1 (\d+)/.exec(cmd)?.[1] ?? 30);
      const limit = c.limits.pidsLimit ?? Infinity;
      const started = Math.max(0, Math.min(n, limit - c.pids));
      c.pids += started;
      c.pidsLimitHits += n - started;
      for (let i = 0; i < n - started; i++) out += "sh: can't fork: Resource temporarily unavailable\r\n";
      break;
    } else if (cmd.startsWith('kill ') || cmd.startsWith('killall ')) {
      c.pids = 1;
    } else if (cmd === 'wait' || cmd === '') {
      // nothing
    } else if (cmd.startsWith('tail /dev/zero')) {
      c.memoryBytes = c.limits.memoryBytes ?? c.memoryBytes;
      const rest = line.slice(line.indexOf(';') + 1);
      setTimeout(() => {
        c.oomKills += 1;
        c.memoryBytes = 1 << 20;
        t.status = 137;
        write(c, t, 'Killed\r\n');
        runCommand(c, t, rest);
      }, 1500);
      return;
    } else if (cmd === 'exit') {
      t.state = 'exited';
      t.exitCode = 0;
      if (t.id === 0) stopContainer(c, 0, 'exited');
      for (const ws of t.clients)
        ws.send(JSON.stringify({ type: 'exit', exitCode: 0, reason: t.id === 0 ? 'exited' : null }));
      return;
    } else {
      out += `sh: ${cmd.split(' ')[0]}: not found\r\n`;
    }
  }
  write(c, t, `${out}${prompt()}`);
}

function input(c, t, data) {
  if (t.state !== 'running') return;
  for (const ch of data.toString('utf8')) {
    if (ch === '\x03') {
      if (t.yes) clearInterval(t.yes);
      t.yes = null;
      t.line = '';
      write(c, t, `^C\r\n${prompt()}`);
    } else if (t.yes) {
      continue;
    } else if (ch === '\r') {
      write(c, t, '\r\n');
      const line = t.line;
      t.line = '';
      runCommand(c, t, line);
    } else if (ch === '\x7f') {
      if (t.line) {
        t.line = t.line.slice(0, -1);
        write(c, t, '\b \b');
      }
    } else if (ch >= ' ') {
      t.line += ch;
      write(c, t, ch);
    }
  }
}

function stopContainer(c, exitCode, reason) {
  c.state = 'exited';
  c.exitCode = exitCode;
  c.exitReason = reason;
  c.finishedAt = new Date().toISOString();
  for (const t of c.terminals.values()) if (t.yes) clearInterval(t.yes);
  broadcastContainer(c);
}

const statsClients = new Set();
function broadcastContainer(c) {
  for (const ws of statsClients) ws.send(JSON.stringify({ type: 'container', container: toJson(c) }));
}

setInterval(() => {
  for (const c of containers.values()) {
    if (c.state !== 'running') continue;
    const busy = [...c.terminals.values()].some((t) => t.yes && !paused(t));
    const cpu = busy ? Math.min(100, (c.limits.cpus ?? 1) * 100) : Math.random() * 2;
    if (busy && c.limits.cpus !== null && c.limits.cpus < 1) c.cpuThrottledPeriods += 10;
    c.cpuUsageUsec += cpu * 10_000;
    const sample = {
      t: Date.now(),
      cpuPercent: cpu,
      cpuUsageUsec: c.cpuUsageUsec,
      memoryBytes: c.memoryBytes + Math.random() * 100_000,
      memoryLimitBytes: c.limits.memoryBytes,
      pids: c.pids,
      pidsLimit: c.limits.pidsLimit,
      oomKills: c.oomKills,
      pidsLimitHits: c.pidsLimitHits,
      cpuThrottledPeriods: c.cpuThrottledPeriods,
      cpuThrottledUsec: c.cpuThrottledPeriods * 5000,
    };
    c.samples.push(sample);
    if (c.samples.length > 600) c.samples.shift();
    for (const ws of statsClients) ws.send(JSON.stringify({ type: 'sample', containerId: c.id, sample }));
  }
}, 1000);

async function readBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : {};
}

async function api(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean).slice(1); // drop "api"
  const method = req.method;
  if (parts[0] === 'images' && method === 'GET') return json(res, 200, [{ name: 'busybox', sizeBytes: 2_200_000 }]);
  if (parts[0] !== 'containers') return error(res, 404, 'NOT_FOUND', 'No such route.');
  if (parts.length === 1 && method === 'GET') return json(res, 200, [...containers.values()].map(toJson));
  if (parts.length === 1 && method === 'POST') {
    const body = await readBody(req);
    const memoryBytes = parseMemory(body.memory);
    if (memoryBytes === null)
      return error(res, 400, 'INVALID_ARGUMENT', `memory: cannot read "${body.memory}" as a size (try 64m).`);
    if (body.hostname !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(body.hostname))
      return error(res, 400, 'INVALID_ARGUMENT', 'hostname: letters, digits, dots and dashes only.');
    if (memoryBytes > 1024 ** 3) return error(res, 400, 'LIMIT_EXCEEDED', 'memory: at most 1g per container.');
    const id = `c${String(nextId++).padStart(4, '0')}${Math.random().toString(16).slice(2, 8)}`;
    const c = {
      id,
      name: `box-${id.slice(1, 5)}`,
      image: body.image ?? 'busybox',
      hostname: body.hostname ?? `box-${id.slice(1, 5)}`,
      cmd: ['/bin/sh'],
      state: 'running',
      limits: { memoryBytes, cpus: body.cpus === undefined ? 1 : Number(body.cpus), pidsLimit: body.pidsLimit ?? 64 },
      initPid: 40_000 + nextId,
      createdAt: new Date().toISOString(),
      startedAt: new Date().toISOString(),
      finishedAt: null,
      exitCode: null,
      exitReason: null,
      terminals: new Map(),
      samples: [],
      pids: 1,
      memoryBytes: 900_000,
      cpuUsageUsec: 0,
      oomKills: 0,
      pidsLimitHits: 0,
      cpuThrottledPeriods: 0,
    };
    containers.set(id, c);
    createTerminal(c, 0);
    broadcastContainer(c);
    return json(res, 201, toJson(c));
  }
  const c = containers.get(parts[1]);
  if (!c) return error(res, 404, 'NOT_FOUND', `No container ${parts[1]}.`);
  if (parts.length === 2 && method === 'GET') return json(res, 200, toJson(c));
  if (parts.length === 2 && method === 'PATCH') {
    const body = await readBody(req);
    if (body.pidsLimit !== undefined) c.limits.pidsLimit = body.pidsLimit;
    if (body.cpus !== undefined) c.limits.cpus = Number(body.cpus);
    if (body.memory !== undefined) c.limits.memoryBytes = parseMemory(body.memory);
    broadcastContainer(c);
    return json(res, 200, toJson(c));
  }
  if (parts.length === 2 && method === 'DELETE') {
    stopContainer(c, 137, 'killed');
    containers.delete(c.id);
    for (const ws of statsClients)
      ws.send(JSON.stringify({ type: 'container', container: { ...toJson(c), state: 'removed' } }));
    res.writeHead(204).end();
    return;
  }
  if (parts[2] === 'terminals' && parts.length === 3 && method === 'POST') {
    const t = createTerminal(c, Math.max(...c.terminals.keys()) + 1);
    return json(
      res,
      201,
      toJson(c).terminals.find((x) => x.id === t.id),
    );
  }
  if (parts[2] === 'terminals' && parts.length === 4 && method === 'DELETE') {
    c.terminals.delete(Number(parts[3]));
    res.writeHead(204).end();
    return;
  }
  if (parts[2] === 'stats') return json(res, 200, { containerId: c.id, samples: c.samples });
  if (parts[2] === 'inspect') {
    const types = ['pid', 'uts', 'mnt', 'ipc', 'net', 'cgroup', 'user'];
    return json(res, 200, {
      id: c.id,
      namespaces: types.map((type, i) => {
        const host = 4026531835 + i;
        const isolated = type !== 'user' && type !== 'net';
        return { type, host, container: isolated ? 4026532200 + i : host, isolated };
      }),
      processes: [
        { hostPid: c.initPid, containerPid: 1, user: 'root', command: '/bin/sh' },
        ...Array.from({ length: c.pids - 1 }, (_, i) => ({
          hostPid: c.initPid + 5 + i,
          containerPid: 5 + i,
          user: 'root',
          command: 'sleep 100',
        })),
      ],
      hostname: { host: 'classroom-host', container: c.hostname },
    });
  }
  return error(res, 404, 'NOT_FOUND', 'No such route.');
}

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  res.setHeader('content-security-policy', CSP[cspMode] ?? CSP.helmet);
  try {
    if (url.pathname.startsWith('/api/')) return await api(req, res, url);
    if (url.pathname === '/healthz') return json(res, 200, { ok: true });
    const path = normalize(join(dist, url.pathname === '/' ? 'index.html' : url.pathname));
    if (!path.startsWith(dist)) return error(res, 403, 'FORBIDDEN', 'No.');
    const data = await readFile(path);
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    res.end(data);
  } catch (err) {
    if (err.code === 'ENOENT') return error(res, 404, 'NOT_FOUND', 'Not found.');
    error(res, 500, 'INTERNAL', String(err));
  }
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (url.pathname === '/api/stats') {
      statsClients.add(ws);
      for (const c of containers.values())
        ws.send(JSON.stringify({ type: 'history', containerId: c.id, samples: c.samples }));
      ws.on('close', () => statsClients.delete(ws));
      return;
    }
    const m = /^\/api\/containers\/([^/]+)\/terminals\/(\d+)$/.exec(url.pathname);
    const c = m && containers.get(m[1]);
    const t = c && c.terminals.get(Number(m[2]));
    if (!t) {
      ws.send(JSON.stringify({ type: 'error', code: 'NOT_FOUND', message: 'No such terminal.' }));
      ws.close(4404, 'not found');
      return;
    }
    ws.send(
      JSON.stringify({
        type: 'attached',
        terminal: toJson(c).terminals.find((x) => x.id === t.id),
        cols: t.cols,
        rows: t.rows,
      }),
    );
    ws.send(Buffer.from(t.transcript));
    t.clients.add(ws);
    t.unacked.set(ws, 0);
    if (t.state === 'exited') ws.send(JSON.stringify({ type: 'exit', exitCode: t.exitCode, reason: c.exitReason }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return input(c, t, data);
      const msg = JSON.parse(data.toString());
      if (msg.type === 'resize') Object.assign(t, { cols: msg.cols, rows: msg.rows });
      if (msg.type === 'ack') t.unacked.set(ws, Math.max(0, (t.unacked.get(ws) ?? 0) - msg.bytes));
    });
    ws.on('close', () => {
      t.clients.delete(ws);
      t.unacked.delete(ws);
    });
  });
});

server.listen(port, '127.0.0.1', () => console.log(`mock playground on http://127.0.0.1:${port}/ (csp: ${cspMode})`));
void FLOW_LOW;
