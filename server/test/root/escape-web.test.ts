/**
 * The escape suite's eyes on the playground's web side (issue 3): a real server on
 * loopback, real containers, and the attacks a stranger on the page could try —
 * no session, another site's origin, another session's terminal by id or by guess,
 * oversized frames, request floods, and a bind beyond loopback without the token.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServeConfig, type ServeOptions } from '../../src/http/config.js';
import { WS_CLOSE, type TerminalServerMessage } from '../../src/protocol/index.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { rootOnly } from './helpers.js';
import { Client, Frames } from './playground-client.js';

const skip = rootOnly();
const quiet = pino({ level: 'silent' });
const servers: RunningServer[] = [];
let stateRoot = '';

async function serve(options: ServeOptions = {}): Promise<{ server: RunningServer; client: () => Client }> {
  const config = resolveServeConfig({ port: 0, stateRoot, webDir: '/nonexistent', ...options }, {});
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
