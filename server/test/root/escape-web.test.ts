/**
 * The escape suite's eyes on the playground's web side (issue 3): a real server on
 * loopback, real containers, and the attacks a stranger on the page could try —
 * no session, another site's origin, another session's terminal by id or by guess,
 * oversized frames, input floods, request floods, and a bind beyond loopback without the
 * token.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServeConfig, type ServeOptions } from '../../src/http/config.js';
import { WS_CLOSE, type TerminalServerMessage } from '../../src/protocol/index.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { rootOnly, waitFor } from './helpers.js';
import { Client, Frames } from './playground-client.js';

const skip = rootOnly();
const quiet = pino({ level: 'silent' });
const servers: RunningServer[] = [];
let stateRoot = '';

async function serve(options: ServeOptions = {}): Promise<{ server: RunningServer; client: () => Client }> {
  const config = resolveServeConfig(
    { port: 0, stateRoot, dataDir: `${stateRoot}-data`, webDir: '/nonexistent', ...options },
    {},
  );
  const server = await startServer(config, { logger: quiet, handleSignals: false, printUrl: false });
  servers.push(server);
  return { server, client: () => new Client(`http://127.0.0.1:${server.port}/`) };
}

describe('the playground under attack', { skip }, () => {
  let victim: Client;
  let attacker: Client;
  let server: RunningServer;
  let containerId = '';
  const terminalPath = () => `/api/containers/${containerId}/terminals/0`;

  before(async () => {
    stateRoot = mkdtempSync('/run/mdocker-escape-web-');
    const started = await serve({ createRatePerSession: 5, createRatePerIp: 1000, maxContainersPerSession: 3 });
    server = started.server;
    victim = started.client();
    attacker = started.client();
    await attacker.request('GET', '/healthz');
    containerId = (await victim.create({ hostname: 'victim' })).id;
  });

  after(async () => {
    for (const s of servers) await s.close();
    if (stateRoot) rmSync(stateRoot, { recursive: true, force: true });
    if (stateRoot) rmSync(`${stateRoot}-data`, { recursive: true, force: true });
  });

  it('refuses a WebSocket upgrade without a session (401)', async () => {
    const anonymous = new Frames(new Client(`http://127.0.0.1:${server.port}/`).socket(terminalPath()));
    await anonymous.until('rejection', () => anonymous.rejected !== null || anonymous.opened);
    assert.equal(anonymous.rejected, 401);
  });

  it("refuses the victim's own cookie from another site's page (cross-site WebSocket hijacking, 403)", async () => {
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${server.port + 1}`]) {
      const hijack = new Frames(victim.socket(terminalPath(), origin));
      await hijack.until('rejection', () => hijack.rejected !== null || hijack.opened);
      assert.equal(hijack.rejected, 403, origin);
      assert.equal(hijack.binary.length, 0);
    }
  });

  it("gives another session nothing of the victim's terminal: closed 4404, not one byte", async () => {
    const peek = new Frames(attacker.socket(terminalPath(), attacker.base.replace(/\/$/, '')));
    await peek.until('close', () => peek.closed !== null || peek.rejected !== null);
    assert.equal(peek.closed?.code ?? peek.rejected, WS_CLOSE.NOT_FOUND);
    assert.equal(peek.binary.length, 0);
    for (const [method, path] of [
      ['GET', `/api/containers/${containerId}`],
      ['POST', `/api/containers/${containerId}/exec`],
      ['DELETE', `/api/containers/${containerId}`],
    ] as const) {
      const reply = await attacker.request(method, path, method === 'POST' ? { cmd: ['id'] } : undefined);
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
    }
    const list = await attacker.request('GET', '/api/containers');
    assert.deepEqual(list.body, []);
  });

  it('uses unguessable ids: 128 random bits, and a guess finds nothing', async () => {
    assert.match(containerId, /^[0-9a-f]{32}$/);
    const other = (await victim.create({})).id;
    assert.notEqual(other.slice(0, 8), containerId.slice(0, 8));
    for (let i = 0; i < 20; i++) {
      const guess = randomBytes(16).toString('hex');
      const reply = await attacker.request('GET', `/api/containers/${guess}`);
      assert.equal(reply.status, 404);
    }
    assert.equal((await victim.request('DELETE', `/api/containers/${other}`)).status, 204);
  });

  it('closes an oversized frame with 1009 and the shell lives on', async () => {
    const ws = new Frames(victim.socket(terminalPath(), victim.base.replace(/\/$/, '')));
    await ws.until('attached', () => ws.control.some((m) => (m as TerminalServerMessage).type === 'attached'));
    ws.ws.send(Buffer.alloc(1024 * 1024, 0x61));
    await ws.until('close', () => ws.closed !== null);
    assert.equal(ws.closed?.code, 1009);
    const exec = await victim.request('POST', `/api/containers/${containerId}/exec`, { cmd: ['hostname'] });
    assert.equal(exec.status, 200, exec.text);
    assert.equal((exec.body as { stdout: string }).stdout.trim(), 'victim');
  });

  it("bounds the server's memory under 256 MiB of input to a program that does not read, closes the pusher (4008), and other terminals keep echoing", async (t) => {
    const stalling = await serve({ flowStallTimeout: '2s' });
    const owner = stalling.client();
    const origin = owner.base.replace(/\/$/, '');
    const target = (await owner.create({})).id;
    const other = (await owner.create({})).id;
    const reader = new Frames(owner.socket(`/api/containers/${target}/terminals/0`, origin));
    await reader.until('attached', () => reader.control.some((m) => (m as TerminalServerMessage).type === 'attached'));
    reader.type('stty raw -echo; echo $((6*7))-ready; sleep 1000\r');
    await reader.until('raw mode', () => reader.text().includes('42-ready'));
    const echo = new Frames(owner.socket(`/api/containers/${other}/terminals/0`, origin));
    await echo.until('attached', () => echo.control.some((m) => (m as TerminalServerMessage).type === 'attached'));
    reader.ws.close();

    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
    const flooder = spawn(
      process.execPath,
      [
        new URL('./input-flooder.js', import.meta.url).pathname,
        `ws://127.0.0.1:${stalling.server.port}/api/containers/${target}/terminals/0`,
        owner.cookie,
        origin,
        String(256 * 1024 * 1024),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    flooder.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const flooded = new Promise<void>((resolve) => flooder.on('exit', () => resolve()));
    let exited = false;
    void flooded.then(() => (exited = true));
    // Meanwhile another terminal answers: one echo after another until the flood ends.
    let echoes = 0;
    while (!exited) {
      echoes++;
      echo.type(`echo pong-$((${echoes}+1000))\r`);
      await echo.until(`echo ${echoes}`, () => echo.text().includes(`pong-${echoes + 1000}`), 5000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await flooded;
    clearInterval(sampler);
    const result = JSON.parse(out) as { flushedBytes: number; code: number | null };
    const grewMiB = (rssMax - rssBefore) / 2 ** 20;
    t.diagnostic(
      `RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB before, at most ${(rssMax / 2 ** 20).toFixed(1)} MiB during; ` +
        `flooder flushed ${(result.flushedBytes / 2 ** 20).toFixed(1)} MiB, closed ${result.code}; ${echoes} echoes`,
    );
    // The queue is at most INPUT_MAX_BYTES (2 MiB); the rest of the slack is V8's young
    // generation, which may grow by a semi-space (16 MiB) churning through the frames
    // the server does read before and after the pause. Unbounded, this is 256 MiB+.
    assert.ok(grewMiB < 32, `RSS grew ${grewMiB.toFixed(1)} MiB (${JSON.stringify(result)})`);
    assert.equal(result.code, WS_CLOSE.TOO_SLOW, JSON.stringify(result));
    assert.ok(echoes >= 3, `${echoes} echoes`);
    await waitFor('echo after the flood', async () => {
      echo.type('echo after-$((2*21))\r');
      await new Promise((resolve) => setTimeout(resolve, 200));
      return echo.text().includes('after-42');
    });
    echo.ws.close();
  });

  it('rate-limits a flood of creates (429) and never exceeds the per-session cap', async () => {
    const flooder = new Client(`http://127.0.0.1:${server.port}/`);
    await flooder.request('GET', '/healthz');
    const statuses = await Promise.all(
      Array.from({ length: 40 }, () => flooder.request('POST', '/api/containers', {}).then((r) => r.status)),
    );
    assert.ok(statuses.includes(429), `no 429 among ${statuses.join(',')}`);
    assert.ok(statuses.filter((s) => s === 201).length <= 3, statuses.join(','));
    const mine = (await flooder.request('GET', '/api/containers')).body as { id: string }[];
    assert.ok(mine.length <= 3);
    for (const c of mine) assert.equal((await flooder.request('DELETE', `/api/containers/${c.id}`)).status, 204);
  });

  it('caps a loop of fresh sessions by their address: containers, WebSockets, and a forged X-Forwarded-For does not help', async () => {
    const { client } = await serve({ maxContainersPerAddress: 2, maxSocketsPerAddress: 3, createRatePerIp: 1000 });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await client().create({})).id);
    const forged = client();
    const refused = await forged.request('POST', '/api/containers', {}, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(refused.status, 403, refused.text);
    assert.deepEqual(refused.body.error.details, { cap: 'containersPerAddress', limit: 2 });
    const sockets: Frames[] = [];
    for (let i = 0; i < 3; i++) {
      const user = client();
      await user.request('GET', '/healthz');
      const frames = new Frames(user.socket('/api/stats'));
      await frames.until('open', () => frames.opened);
      sockets.push(frames);
    }
    const fourth = client();
    await fourth.request('GET', '/healthz');
    const over = new Frames(fourth.socket('/api/stats'));
    await over.until('rejection', () => over.rejected !== null || over.opened);
    assert.equal(over.rejected, 403);
    for (const frames of sockets) frames.ws.close();
  });

  it('bound beyond loopback it demands the token, and the token lets a browser in', async () => {
    // Listening on every address; the test only ever connects to loopback.
    const open = await serve({ host: '0.0.0.0' });
    const token = new URL(open.server.url).searchParams.get('token');
    assert.ok(token && token.length >= 32, open.server.url);
    const stranger = open.client();
    const refused = await stranger.request('GET', '/api/containers');
    assert.equal(refused.status, 401);
    const wrong = await stranger.request('GET', '/api/containers', undefined, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    const allowed = await stranger.request('GET', '/api/containers', undefined, { authorization: `Bearer ${token}` });
    assert.equal(allowed.status, 200, allowed.text);
  });
});
