// One node of a cluster, without root (host-shell containers): sessions signed with a
// shared key and carrying their node, NODE_GONE for another node's or a previous start's
// session, /readyz and the agent line from headroom, the admin drain and its notice, and
// what must never leak: the key, another node's session.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveServeConfig } from '../src/http/config.js';
import { SessionKeeper, loadSessionKey } from '../src/http/sessions.js';
import type { ReadyJson, StatsServerMessage } from '../src/protocol/index.js';
import { serve } from './host-shell-server.js';
import { Frames } from './root/playground-client.js';

const dir = mkdtempSync(join(tmpdir(), 'mdocker-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const KEY = 'c2Vzc2lvbi1rZXktZm9yLXRoZS1jbHVzdGVyLXRlc3RzLW9ubHktMTIzNDU2Nzg5MA';
const keyFile = join(dir, 'session.key');
writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
chmodSync(keyFile, 0o600);
const TOKEN = 'admin-token-of-the-tests';

function nodeOptions(node: string, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return { nodeId: node, sessionKeyFile: keyFile, token: TOKEN, ...extra };
}
const bearer = { authorization: `Bearer ${TOKEN}` };

function agentLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(port, '127.0.0.1');
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('sessions across nodes', () => {
  it('a cookie names its node; another node with the same key answers NODE_GONE (421) and hands out one of its own', async () => {
    const a = await serve(nodeOptions('node-a'));
    const b = await serve(nodeOptions('node-b'));
    const user = a.client();
    const container = await user.createContainer({}, bearer);
    const cookie = user.cookies.get('mdocker_session')!;
    assert.equal(cookie.split('.')[1], 'node-a', 'the node is the cookie’s second field (what HAProxy routes on)');

    const elsewhere = b.client();
    elsewhere.cookies.set('mdocker_session', cookie);
    const gone = await elsewhere.request('GET', '/api/containers', { headers: bearer });
    assert.equal(gone.status, 421);
    assert.equal(gone.body.error.code, 'NODE_GONE');
    assert.match(gone.body.error.message, /your node \(node-a\) is gone/);
    assert.deepEqual(gone.body.error.details, { node: 'node-a', restarted: false });
    const fresh = elsewhere.cookies.get('mdocker_session')!;
    assert.equal(fresh.split('.')[1], 'node-b', 'a new session of the node that answered');
    const list = await elsewhere.request('GET', '/api/containers', { headers: bearer });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, [], 'the new session owns nothing');
    const other = await elsewhere.request('GET', `/api/containers/${container.id}`, { headers: bearer });
    assert.equal(other.status, 404);
  });

  it('a WebSocket upgrade with another node’s session is refused with 421 before the handshake', async () => {
    const a = await serve(nodeOptions('node-a'));
    const b = await serve(nodeOptions('node-b'));
    const user = a.client();
    await user.request('GET', '/healthz');
    const elsewhere = b.client();
    elsewhere.cookies.set('mdocker_session', user.cookies.get('mdocker_session')!);
    const frames = new Frames(elsewhere.socket('/api/stats', { headers: bearer }));
    await frames.until('the refusal', () => frames.rejected !== null);
    assert.equal(frames.rejected, 421);
  });

  it('pages and assets load with another node’s cookie untouched: the page learns it from its API call', async () => {
    const a = await serve(nodeOptions('node-a'));
    const b = await serve(nodeOptions('node-b'));
    const user = a.client();
    await user.request('GET', '/healthz');
    const elsewhere = b.client();
    elsewhere.cookies.set('mdocker_session', user.cookies.get('mdocker_session')!);
    const page = await elsewhere.request('GET', '/healthz');
    assert.equal(page.status, 200);
    assert.equal(page.headers['set-cookie'], undefined);
  });

  it('after a restart (same node, same key) the previous start’s sessions are told their containers are gone', async () => {
    const first = await serve(nodeOptions('node-a'));
    const user = first.client();
    await user.createContainer({}, bearer);
    await first.server.close();
    const second = await serve(nodeOptions('node-a'));
    const again = second.client();
    again.cookies.set('mdocker_session', user.cookies.get('mdocker_session')!);
    const reply = await again.request('GET', '/api/containers', { headers: bearer });
    assert.equal(reply.status, 421);
    assert.deepEqual(reply.body.error.details, { node: 'node-a', restarted: true });
    assert.match(reply.body.error.message, /restarted/);
  });

  it('a forged cookie (another key) naming a node is no session at all; a replayed one gets nothing of anyone’s', async () => {
    const a = await serve(nodeOptions('node-a'));
    const victim = a.client();
    const container = await victim.createContainer({}, bearer);
    const forger = new SessionKeeper({ key: Buffer.alloc(48, 7), node: 'node-a' });
    const attacker = a.client();
    const planted = forger.issue().cookieValue;
    attacker.cookies.set('mdocker_session', planted);
    const reply = await attacker.request('GET', '/api/containers', { headers: bearer });
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, []);
    assert.notEqual(attacker.cookies.get('mdocker_session'), planted, 'replaced by one of the node’s own');
    // A genuine cookie with its node field changed no longer verifies.
    const [id, , boot, mac] = victim.cookies.get('mdocker_session')!.split('.');
    const moved = a.client();
    moved.cookies.set('mdocker_session', `${id}.node-b.${boot}.${mac}`);
    const movedReply = await moved.request('GET', `/api/containers/${container.id}`, { headers: bearer });
    assert.equal(movedReply.status, 404);
  });

  it('the join link names the node of the class', async () => {
    const a = await serve(nodeOptions('node-a'));
    const teacher = a.client();
    const created = await teacher.request('POST', '/api/classes', { json: { name: 'c' }, headers: bearer });
    assert.equal(created.status, 201, created.text);
    assert.match(created.body.joinUrl, /^\/join\/[A-Z0-9]+\?node=node-a$/);
  });
});

describe('readiness and headroom', () => {
  it('/readyz answers 200 with headroom, 503 at the container cap, with no token; the agent says the weight or drain', async () => {
    const a = await serve(nodeOptions('node-a', { maxContainers: 4, agentPort: 0 }));
    const probe = a.client();
    const ready = await probe.request('GET', '/readyz');
    assert.equal(ready.status, 200);
    const body = ready.body as ReadyJson;
    assert.equal(body.node, 'node-a');
    assert.equal(body.headroom.freeSlots, 4);
    assert.ok(body.headroom.weightPercent >= 1 && body.headroom.weightPercent <= 100);
    assert.match(await agentLine(a.server.agentPort!), /^ready \d+%\n$/);

    const user = a.client();
    for (let i = 0; i < 2; i++) await user.createContainer({}, bearer);
    const half = (await probe.request('GET', '/readyz')).body as ReadyJson;
    assert.equal(half.headroom.freeSlots, 2);
    assert.ok(half.headroom.weightPercent < body.headroom.weightPercent, 'fewer free slots, less weight');
    for (let i = 0; i < 2; i++) await user.createContainer({}, bearer);
    const full = await probe.request('GET', '/readyz');
    assert.equal(full.status, 503);
    assert.deepEqual(full.body.reasons, ['at-capacity']);
    assert.equal(await agentLine(a.server.agentPort!), 'drain\n');
    assert.equal((await probe.request('GET', '/healthz')).status, 200, 'alive all the same');
  });
});

describe('drain', () => {
  it('needs the token: without it (or as a student) the route does not exist', async () => {
    const a = await serve(nodeOptions('node-a'));
    const stranger = a.client();
    assert.equal((await stranger.request('POST', '/api/node/drain', { json: {} })).status, 401);
    const wrong = await stranger.request('POST', '/api/node/drain', {
      json: {},
      headers: { authorization: 'Bearer not-the-token' },
    });
    assert.equal(wrong.status, 401);
    assert.equal((await stranger.request('GET', '/readyz')).status, 200, 'nothing drained');
    const loopback = await serve({ nodeId: 'node-l' });
    const local = loopback.client();
    assert.equal(
      (await local.request('POST', '/api/node/drain', { json: {} })).status,
      404,
      'no token: no admin drain',
    );
  });

  it('stops new sessions, tells users on their stats stream, keeps their containers working, and undrains', async () => {
    const a = await serve(nodeOptions('node-a'));
    const user = a.client();
    const container = await user.createContainer({}, bearer);
    const stats = new Frames(user.socket('/api/stats', { headers: bearer }));
    await stats.until('the stream', () => stats.opened);

    const drained = await a.client().request('POST', '/api/node/drain', { json: { grace: '10m' }, headers: bearer });
    assert.equal(drained.status, 202, drained.text);
    assert.equal(drained.body.state, 'draining');
    await stats.until('the node notice', () => stats.control.some((m) => (m as StatsServerMessage).type === 'node'));
    const notice = stats.control.find((m) => (m as StatsServerMessage).type === 'node') as Extract<
      StatsServerMessage,
      { type: 'node' }
    >;
    assert.equal(notice.node.state, 'draining');
    assert.match(notice.node.message, /removed in 10 minutes/);

    const readyz = await a.client().request('GET', '/readyz');
    assert.equal(readyz.status, 503);
    assert.deepEqual(readyz.body.reasons, ['draining']);
    const newcomer = a.client();
    const refused = await newcomer.request('POST', '/api/containers', { json: {}, headers: bearer });
    assert.equal(refused.status, 503);
    assert.equal(newcomer.cookies.get('mdocker_session'), undefined, 'no new session handed out');
    assert.equal(
      (await a.client().request('POST', '/api/classes', { json: { name: 'x' }, headers: bearer })).status,
      503,
    );
    // The user already here keeps working.
    assert.equal((await user.request('GET', `/api/containers/${container.id}`, { headers: bearer })).status, 200);
    await user.createContainer({}, bearer);
    // A stream opened during the drain is told at once.
    const late = new Frames(user.socket('/api/stats', { headers: bearer }));
    await late.until('the notice on a new stream', () =>
      late.control.some((m) => (m as StatsServerMessage).type === 'node'),
    );
    late.ws.close();

    const undrained = await a.client().request('DELETE', '/api/node/drain', { headers: bearer });
    assert.equal(undrained.status, 200);
    assert.equal((await a.client().request('GET', '/readyz')).status, 200);
    stats.ws.close();
  });

  it('ends at the grace: the containers are removed and the server stops', async () => {
    const a = await serve(nodeOptions('node-a'));
    const user = a.client();
    const container = await user.createContainer({}, bearer);
    const reply = await a.client().request('POST', '/api/node/drain', { json: { grace: '300ms' }, headers: bearer });
    assert.equal(reply.status, 202);
    const deadline = Date.now() + 10_000;
    while (!a.runtime.removed.includes(container.id) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(!a.runtime.removed.includes(container.id), false, 'removed at the end of the grace');
    await a.server.close();
  });

  it('ends early once no user container is left', async () => {
    const a = await serve(nodeOptions('node-a'));
    const started = Date.now();
    await a.client().request('POST', '/api/node/drain', { json: { grace: '1h' }, headers: bearer });
    await a.server.close();
    assert.equal(a.server.node.state, 'stopping');
    assert.ok(Date.now() - started < 5000);
  });
});

describe('the session key', () => {
  it('is refused when short or missing, and never appears in an answer', async () => {
    const short = join(dir, 'short.key');
    writeFileSync(short, 'abc', { mode: 0o600 });
    assert.throws(() => loadSessionKey(short), /at least 32 bytes/);
    assert.throws(() => loadSessionKey(join(dir, 'missing')), /cannot read it/);
    const a = await serve(nodeOptions('node-a'));
    const user = a.client();
    await user.createContainer({}, bearer);
    for (const path of ['/healthz', '/readyz', '/metrics', '/api/me', '/api/node', '/api/containers', '/api/nope']) {
      const reply = await user.request('GET', path, { headers: bearer });
      assert.ok(!reply.text.includes(KEY) && !reply.text.includes(KEY.slice(0, 16)), path);
      assert.ok(!JSON.stringify(reply.headers).includes(KEY.slice(0, 16)), path);
    }
  });

  it('node ids are DNS labels', () => {
    for (const bad of ['Node-A', 'a.b', '-a', 'a-', 'x'.repeat(64), 'a_b', 'a b']) {
      assert.throws(() => resolveServeConfig({ nodeId: bad }, {}), /--node-id/, bad);
    }
    assert.equal(resolveServeConfig({ nodeId: 'mdocker-0' }, {}).nodeId, 'mdocker-0');
  });
});
