// The playground server over HTTP and WebSockets, without root: a stand-in runtime whose
// "containers" are host shells on real ptys. Sessions, ownership, access control,
// validation, caps, rate limits, reaping and shutdown are the server's; they are proven here.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sessionLabel } from '../src/playground/playground.js';
import { WS_CLOSE, type StatsServerMessage } from '../src/protocol/index.js';
import { serve } from './host-shell-server.js';
import { Frames } from './root/playground-client.js';

describe('sessions', () => {
  it('labels a session in logs by 8 hex digits of a keyed hash, the same however many sessions came between', () => {
    const first = sessionLabel('a'.repeat(43));
    assert.match(first, /^[0-9a-f]{8}$/);
    assert.notEqual(sessionLabel('b'.repeat(43)), first);
    assert.ok(!first.includes('aaaa'));
    // More sessions than the labels kept: the first one's label is computed again, equal.
    for (let i = 0; i < 5000; i++) sessionLabel(`session-${i}`);
    assert.equal(sessionLabel('a'.repeat(43)), first);
  });

  it('sets an HttpOnly, SameSite=Strict session cookie on the first request of any route', async () => {
    const { client } = await serve();
    for (const path of ['/healthz', '/no/such/page', '/api/containers', '/']) {
      const fresh = client();
      const reply = await fresh.request('GET', path);
      const cookie = String(reply.headers['set-cookie']);
      assert.match(cookie, /^mdocker_session=[A-Za-z0-9_-]{43}\.local\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{43}; /, path);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const again = await fresh.request('GET', path);
      assert.equal(again.headers['set-cookie'], undefined, 'a valid cookie is kept');
    }
  });

  it('does not replace a withheld SameSite=Strict cookie on a cross-site navigation', async () => {
    const { client } = await serve();
    const reply = await client().request('GET', '/', { headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['set-cookie'], undefined);
  });

  it('replaces a cookie the server did not sign', async () => {
    const { client } = await serve();
    const forger = client();
    forger.cookies.set('mdocker_session', `${'a'.repeat(43)}.${'b'.repeat(43)}`);
    const reply = await forger.request('GET', '/api/containers');
    assert.match(String(reply.headers['set-cookie']), /^mdocker_session=/);
  });

  it('keeps containers apart: another session can neither see nor touch them (404)', async () => {
    const { client } = await serve();
    const alice = client();
    const bob = client();
    await bob.request('GET', '/healthz');
    const container = await alice.createContainer();
    assert.equal((await bob.request('GET', '/api/containers')).body.length, 0);
    for (const [method, path, json] of [
      ['GET', `/api/containers/${container.id}`, undefined],
      ['PATCH', `/api/containers/${container.id}`, { pidsLimit: 10 }],
      ['DELETE', `/api/containers/${container.id}`, undefined],
      ['POST', `/api/containers/${container.id}/terminals`, {}],
      ['GET', `/api/containers/${container.id}/terminals`, undefined],
      ['POST', `/api/containers/${container.id}/exec`, { cmd: ['true'] }],
      ['GET', `/api/containers/${container.id}/inspect`, undefined],
      ['GET', `/api/containers/${container.id}/stats`, undefined],
    ] as const) {
      const reply = await bob.request(method, path, json === undefined ? {} : { json });
      assert.equal(reply.status, 404, `${method} ${path}`);
      assert.equal(reply.body.error.code, 'NOT_FOUND');
    }
    const frames = new Frames(bob.socket(`/api/containers/${container.id}/terminals/0`));
    await frames.until('close', () => frames.closed !== null);
    assert.equal(frames.closed?.code, WS_CLOSE.NOT_FOUND);
    assert.equal((await alice.request('GET', `/api/containers/${container.id}`)).status, 200);
  });
});

describe('access control', () => {
  it('requires the token when the server has one: Bearer, ?token= (then a cookie), else 401', async () => {
    const { client } = await serve({ token: 'sesame-0123456789' });
    const anonymous = client();
    const denied = await anonymous.request('GET', '/api/containers');
    assert.equal(denied.status, 401);
    assert.equal(denied.body.error.code, 'UNAUTHORIZED');
    assert.equal((await anonymous.request('GET', '/')).status, 401);
    assert.equal((await anonymous.request('GET', '/healthz')).status, 200, 'health probes need no token');
    assert.equal(
      (await anonymous.request('GET', '/api/containers', { headers: { authorization: 'Bearer wrong-token-123' } }))
        .status,
      401,
    );
    assert.equal(
      (await anonymous.request('GET', '/api/containers', { headers: { authorization: 'Bearer sesame-0123456789' } }))
        .status,
      200,
    );

    const browser = client();
    const landing = await browser.request('GET', '/?token=sesame-0123456789&x=1');
    assert.equal(landing.status, 302);
    assert.equal(landing.headers.location, '/?x=1', 'the token leaves the address bar');
    assert.ok(browser.cookies.has('mdocker_token'));
    assert.notEqual(browser.cookies.get('mdocker_token'), 'sesame-0123456789', 'the cookie is not the token');
    assert.equal((await browser.request('GET', '/api/containers')).status, 200);

    const noToken = new Frames(anonymous.socket('/api/stats'));
    await noToken.until('rejection', () => noToken.rejected !== null);
    assert.equal(noToken.rejected, 401);
    const withCookie = new Frames(browser.socket('/api/stats'));
    await withCookie.until('open', () => withCookie.opened);
    withCookie.ws.close();
  });

  it('refuses WebSocket upgrades from another origin (cross-site WebSocket hijacking)', async () => {
    const { client } = await serve();
    const victim = client();
    const container = await victim.createContainer();
    for (const path of ['/api/stats', `/api/containers/${container.id}/terminals/0`]) {
      const hijack = new Frames(victim.socket(path, { origin: 'http://evil.example' }));
      await hijack.until('rejection', () => hijack.rejected !== null || hijack.opened);
      assert.equal(hijack.rejected, 403, path);
      const nullOrigin = new Frames(victim.socket(path, { origin: 'null' }));
      await nullOrigin.until('rejection', () => nullOrigin.rejected !== null || nullOrigin.opened);
      assert.equal(nullOrigin.rejected, 403, path);
    }
    const sameOrigin = new Frames(victim.socket('/api/stats', { origin: victim.base.replace(/\/$/, '') }));
    await sameOrigin.until('open', () => sameOrigin.opened);
    sameOrigin.ws.close();
  });

  it('refuses cross-origin writes and non-JSON bodies', async () => {
    const { client, runtime } = await serve();
    const user = client();
    await user.request('GET', '/healthz');
    const crossOrigin = await user.request('POST', '/api/containers', {
      json: {},
      headers: { origin: 'http://evil.example' },
    });
    assert.equal(crossOrigin.status, 403);
    const crossSite = await user.request('POST', '/api/containers', {
      json: {},
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(crossSite.status, 403);
    const form = await user.request('POST', '/api/containers', {
      raw: 'image=busybox',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 400);
    assert.equal(runtime.records.size, 0);
  });

  it('refuses foreign Host names without a token (DNS rebinding)', async () => {
    const { client } = await serve();
    const reply = await client().request('GET', '/api/containers', { headers: { host: 'evil.example:8080' } });
    assert.equal(reply.status, 403);
    assert.match(reply.body.error.message, /Host/);
    assert.equal(
      (await client().request('GET', '/api/containers', { headers: { host: 'localhost:1234' } })).status,
      200,
    );
  });

  it('sends a strict Content-Security-Policy and the other helmet headers', async () => {
    const { client } = await serve();
    const reply = await client().request('GET', '/');
    const csp = String(reply.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(reply.headers['x-content-type-options'], 'nosniff');
  });
});

describe('web UI', () => {
  it('serves the built UI at /, its assets, and index.html for the page routes', async () => {
    const webDir = mkdtempSync(join(tmpdir(), 'mdocker-web-'));
    mkdirSync(join(webDir, 'assets'));
    writeFileSync(
      join(webDir, 'index.html'),
      '<!doctype html><title>ui</title><script type="module" src="/assets/app.js"></script>',
    );
    writeFileSync(join(webDir, 'assets', 'app.js'), 'console.log(1);');
    const { client } = await serve({ webDir });
    const user = client();
    const index = await user.request('GET', '/', { headers: { accept: 'text/html' } });
    assert.equal(index.status, 200);
    assert.match(index.text, /<title>ui<\/title>/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    const script = await user.request('GET', '/assets/app.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    assert.match(
      (await user.request('GET', '/containers/abc', { headers: { accept: 'text/html' } })).text,
      /<title>ui<\/title>/,
    );
    const api = await user.request('GET', '/api/nope', { headers: { accept: 'text/html' } });
    assert.equal(api.status, 404);
    assert.equal(api.body.error.code, 'NOT_FOUND');
  });
});

describe('validation', () => {
  it('answers malformed, unknown or absurd input with a 4xx naming the problem, and creates nothing', async () => {
    const { client, runtime } = await serve();
    const user = client();
    const cases: [
      string,
      { json?: unknown; raw?: string; headers?: Record<string, string> },
      number,
      string,
      RegExp,
    ][] = [
      [
        'malformed JSON',
        { raw: '{"image":', headers: { 'content-type': 'application/json' } },
        400,
        'INVALID_ARGUMENT',
        /malformed JSON/,
      ],
      [
        'unknown field',
        { json: { image: 'busybox', privileged: true } },
        400,
        'INVALID_ARGUMENT',
        /unknown field "privileged"/,
      ],
      ['bad memory unit', { json: { memory: 'lots' } }, 400, 'INVALID_ARGUMENT', /invalid memory "lots"/],
      ['negative pids', { json: { pidsLimit: -1 } }, 400, 'INVALID_ARGUMENT', /pids limit/],
      ['cpus beyond the host', { json: { cpus: 1000 } }, 400, 'INVALID_ARGUMENT', /range of CPUs/],
      ['memory above the cap', { json: { memory: '64g' } }, 403, 'LIMIT_EXCEEDED', /--max-memory/],
      ['pids above the cap', { json: { pidsLimit: 100000 } }, 403, 'LIMIT_EXCEEDED', /--max-pids-limit 1024/],
      ['bad hostname', { json: { hostname: '-bad-' } }, 400, 'INVALID_ARGUMENT', /hostname/],
      ['image path', { json: { image: '../../etc' } }, 400, 'INVALID_ARGUMENT', /image name/],
      ['unknown image', { json: { image: 'nosuchimage' } }, 404, 'NOT_FOUND', /unknown image/],
      ['empty command', { json: { cmd: [] } }, 400, 'INVALID_ARGUMENT', /command/],
      ['command not strings', { json: { cmd: [1, 2] } }, 400, 'INVALID_ARGUMENT', /cmd/],
      ['not an object', { json: [1, 2] }, 400, 'INVALID_ARGUMENT', /invalid/],
      ['huge body', { json: { cmd: ['x'.repeat(20_000)] } }, 400, 'INVALID_ARGUMENT', /larger than/],
    ];
    for (const [name, options, status, code, message] of cases) {
      const reply = await user.request('POST', '/api/containers', options);
      assert.equal(reply.status, status, `${name}: ${reply.text}`);
      assert.equal(reply.body.error.code, code, name);
      assert.match(reply.body.error.message, message, name);
    }
    const cap = await user.request('POST', '/api/containers', { json: { memory: '64g' } });
    assert.deepEqual(cap.body.error.details, {
      cap: 'memory',
      limit: '1GiB',
      maxBytes: 1024 ** 3,
      requestedBytes: 64 * 1024 ** 3,
    });
    assert.equal(runtime.records.size, 0);
    assert.equal((await user.request('GET', '/api/containers')).body.length, 0);
  });

  it('answers unknown containers, terminals and routes with 404', async () => {
    const { client } = await serve();
    const user = client();
    assert.equal((await user.request('GET', '/api/containers/0123456789abcdef0123456789abcdef')).status, 404);
    assert.equal((await user.request('DELETE', '/api/containers/nope')).status, 404);
    assert.equal((await user.request('GET', '/api/nothing')).body.error.code, 'NOT_FOUND');
    const container = await user.createContainer();
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}/terminals/7`)).status, 404);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}/terminals/x`)).status, 404);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}/terminals/0`)).status, 409);
    const frames = new Frames(user.socket(`/api/containers/${container.id}/terminals/9`));
    await frames.until('close', () => frames.closed !== null);
    assert.equal(frames.closed?.code, WS_CLOSE.NOT_FOUND);
    assert.equal(frames.control[0]?.type, 'error');
    const bad = new Frames(user.socket('/api/elsewhere'));
    await bad.until('rejection', () => bad.rejected !== null);
    assert.equal(bad.rejected, 404);
  });
});

describe('containers and terminals', () => {
  it('creates with defaults, lists, gets, updates limits, and deletes', async () => {
    const { client, runtime } = await serve({ defaultMemory: '128m', defaultPidsLimit: 100 });
    const user = client();
    const container = await user.createContainer({ hostname: 'box1', cpus: '0.5' });
    assert.equal(container.state, 'running');
    assert.equal(container.hostname, 'box1');
    assert.deepEqual(container.limits, { memoryBytes: 128 * 1024 * 1024, cpus: 0.5, pidsLimit: 100 });
    assert.equal(container.terminals[0]?.id, 0);
    assert.equal((await user.request('GET', '/api/containers')).body[0].id, container.id);
    const updated = await user.request('PATCH', `/api/containers/${container.id}`, {
      json: { pidsLimit: 50, memory: '64m' },
    });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.body.limits.pidsLimit, 50);
    assert.equal(runtime.records.get(container.id)?.limits.memoryBytes, 64 * 1024 * 1024);
    assert.equal(
      (await user.request('PATCH', `/api/containers/${container.id}`, { json: { pidsLimit: 5000 } })).status,
      403,
    );
    assert.equal((await user.request('PATCH', `/api/containers/${container.id}`, { json: {} })).status, 400);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    assert.deepEqual(runtime.removed, [container.id]);
    assert.equal((await user.request('GET', `/api/containers/${container.id}`)).status, 404);
  });

  it('attaches terminal 0, echoes through it, and opens a second terminal', async () => {
    const { client } = await serve();
    const user = client();
    const container = await user.createContainer();
    const frames = new Frames(user.socket(`/api/containers/${container.id}/terminals/0?cols=100&rows=30`));
    await frames.until('attached', () => frames.control.length > 0 && frames.binary.length > 0);
    assert.deepEqual(frames.control[0], {
      type: 'attached',
      terminal: { ...container.terminals[0], cols: 100, rows: 30, clients: 1 },
      cols: 100,
      rows: 30,
    });
    frames.ws.send(Buffer.from('echo $((6*7))\r'));
    await frames.until('42', () => /\r\n42\r\n/.test(frames.text()));

    const second = await user.request('POST', `/api/containers/${container.id}/terminals`, {
      json: { cols: 90, rows: 20 },
    });
    assert.equal(second.status, 201, second.text);
    assert.equal(second.body.id, 1);
    const other = new Frames(user.socket(`/api/containers/${container.id}/terminals/1`));
    await other.until('attached', () => other.binary.length > 0);
    other.ws.send(Buffer.from('echo second-$((1+1))\r'));
    await other.until('echo', () => /second-2/.test(other.text()));
    assert.equal((await user.request('GET', `/api/containers/${container.id}/terminals`)).body.length, 2);
    assert.equal((await user.request('DELETE', `/api/containers/${container.id}/terminals/1`)).status, 204);
    await other.until('closed', () => other.closed !== null);
    frames.ws.close();
  });

  it('runs exec without a tty with a time limit and an output cap', async () => {
    const { client } = await serve({ execMaxOutput: '1k', execMaxTimeout: '5s' });
    const user = client();
    const container = await user.createContainer();
    const ok = await user.request('POST', `/api/containers/${container.id}/exec`, {
      json: { cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] },
    });
    assert.deepEqual(ok.body, { exitCode: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false, truncated: false });
    const slow = await user.request('POST', `/api/containers/${container.id}/exec`, {
      json: { cmd: ['sleep', '30'], timeoutMs: 300 },
    });
    assert.equal(slow.body.timedOut, true);
    assert.equal(slow.body.exitCode, 143);
    const loud = await user.request('POST', `/api/containers/${container.id}/exec`, {
      json: { cmd: ['sh', '-c', 'head -c 100000 /dev/zero'] },
    });
    assert.equal(loud.body.stdout.length, 1024);
    assert.equal(loud.body.truncated, true);
    const tooLong = await user.request('POST', `/api/containers/${container.id}/exec`, {
      json: { cmd: ['true'], timeoutMs: 3_600_000 },
    });
    assert.equal(tooLong.status, 403);
  });

  it('turns a launcher failure into a clear error and keeps nothing', async () => {
    const { client } = await serve();
    const user = client();
    const reply = await user.request('POST', '/api/containers', { json: { hostname: 'launch-fails' } });
    assert.equal(reply.status, 500);
    assert.equal(reply.body.error.code, 'LAUNCH_FAILED');
    assert.match(reply.body.error.message, /pivot_root: EINVAL/);
    assert.equal((await user.request('GET', '/api/containers')).body.length, 0);
  });

  it('closes a client that sends a frame over maxPayload', async () => {
    const { client } = await serve({ wsMaxPayload: '1k' });
    const user = client();
    const container = await user.createContainer();
    const frames = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await frames.until('open', () => frames.binary.length > 0);
    frames.ws.send(Buffer.alloc(4096, 0x61));
    await frames.until('close', () => frames.closed !== null);
    assert.equal(frames.closed?.code, WS_CLOSE.MESSAGE_TOO_BIG);
  });
});

describe('caps and rate limits', () => {
  it('enforces containers per session and in total, saying which cap and its value', async () => {
    const { client } = await serve({ maxContainersPerSession: 2, maxContainers: 3 });
    const alice = client();
    await alice.createContainer();
    await alice.createContainer();
    const third = await alice.request('POST', '/api/containers', { json: {} });
    assert.equal(third.status, 403);
    assert.equal(third.body.error.code, 'LIMIT_EXCEEDED');
    assert.deepEqual(third.body.error.details, { cap: 'containersPerSession', limit: 2 });
    assert.match(third.body.error.message, /--max-containers-per-session 2/);
    const bob = client();
    await bob.createContainer();
    const full = await bob.request('POST', '/api/containers', { json: {} });
    assert.deepEqual(full.body.error.details, { cap: 'containers', limit: 3 });
  });

  it('caps the containers of one address across fresh sessions, and X-Forwarded-For is not believed by default', async () => {
    const { client } = await serve({ maxContainersPerSession: 5, maxContainersPerAddress: 3 });
    for (let i = 0; i < 3; i++) await client().createContainer();
    // A fresh cookie and a forged X-Forwarded-For: the same address all the same.
    const fresh = client();
    const refused = await fresh.request('POST', '/api/containers', {
      json: {},
      headers: { 'x-forwarded-for': `203.0.113.${Math.floor(Math.random() * 200)}` },
    });
    assert.equal(refused.status, 403, refused.text);
    assert.deepEqual(refused.body.error.details, { cap: 'containersPerAddress', limit: 3 });
    assert.match(refused.body.error.message, /--max-containers-per-address 3/);
  });

  it('behind a proxy (--trust-proxy 1) counts the address the proxy saw', async () => {
    const { client } = await serve({ maxContainersPerAddress: 1, trustProxy: '1' });
    await client().createContainer({}, { 'x-forwarded-for': '198.51.100.7' });
    const same = await client().request('POST', '/api/containers', {
      json: {},
      headers: { 'x-forwarded-for': '198.51.100.7' },
    });
    assert.equal(same.status, 403);
    await client().createContainer({}, { 'x-forwarded-for': '198.51.100.8' });
  });

  it('caps execs running at once, per address and in total', async () => {
    const { client } = await serve({ maxExecsPerAddress: 1, maxExecs: 5 });
    const user = client();
    const container = await user.createContainer();
    const path = `/api/containers/${container.id}/exec`;
    const slow = user.request('POST', path, { json: { cmd: ['sleep', '1'] } });
    await sleep(200);
    const second = await user.request('POST', path, { json: { cmd: ['true'] } });
    assert.equal(second.status, 403, second.text);
    assert.deepEqual(second.body.error.details, { cap: 'execsPerAddress', limit: 1 });
    assert.equal((await slow).status, 200);
    assert.equal((await user.request('POST', path, { json: { cmd: ['true'] } })).status, 200, 'the slot is free again');
  });

  it('caps the WebSockets of one address across fresh sessions, and its upgrades per window', async () => {
    const { client } = await serve({ maxSocketsPerAddress: 2, upgradeRatePerIp: 4 });
    const open: Frames[] = [];
    for (let i = 0; i < 2; i++) {
      const user = client();
      await user.request('GET', '/healthz');
      const frames = new Frames(user.socket('/api/stats'));
      await frames.until('open', () => frames.opened);
      open.push(frames);
    }
    const third = client();
    await third.request('GET', '/healthz');
    const refused = new Frames(third.socket('/api/stats'));
    await refused.until('rejection', () => refused.rejected !== null || refused.opened);
    assert.equal(refused.rejected, 403, 'a third socket from the address');
    for (const frames of open) frames.ws.close();
    await sleep(100);
    // Sockets closed, but the window's upgrades are spent: 3 used, 1 left, then 429.
    const fourth = new Frames(third.socket('/api/stats'));
    await fourth.until('open', () => fourth.opened);
    fourth.ws.close();
    const fifth = new Frames(third.socket('/api/stats'));
    await fifth.until('rejection', () => fifth.rejected !== null || fifth.opened);
    assert.equal(fifth.rejected, 429);
  });

  it('holds the caps under concurrent creates', async () => {
    const { client, runtime } = await serve({ maxContainersPerSession: 2 });
    const user = client();
    await user.request('GET', '/healthz');
    const replies = await Promise.all(
      Array.from({ length: 6 }, () => user.request('POST', '/api/containers', { json: {} })),
    );
    assert.deepEqual(replies.map((reply) => reply.status).sort(), [201, 201, 403, 403, 403, 403]);
    assert.equal(runtime.records.size, 2);
  });

  it('caps terminals per container', async () => {
    const { client } = await serve({ maxTerminalsPerContainer: 2 });
    const user = client();
    const container = await user.createContainer();
    assert.equal((await user.request('POST', `/api/containers/${container.id}/terminals`)).status, 201);
    const refused = await user.request('POST', `/api/containers/${container.id}/terminals`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.details.cap, 'terminalsPerContainer');
  });

  it('rate limits container creation per session', async () => {
    const { client, runtime } = await serve({ createRatePerSession: 2, maxContainersPerSession: 10 });
    const user = client();
    await user.createContainer();
    await user.createContainer();
    const limited = await user.request('POST', '/api/containers', { json: {} });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.equal(runtime.records.size, 2);
    await client().createContainer();
  });
});

describe('stats, reaping, shutdown, metrics', () => {
  it('streams the session’s containers, their history and 1 Hz-style samples', async () => {
    const { client } = await serve({ statsInterval: '100ms' });
    const user = client();
    const container = await user.createContainer();
    await sleep(350);
    const frames = new Frames(user.socket('/api/stats'));
    await frames.until('samples', () => frames.control.filter((m) => m.type === 'sample').length >= 2);
    const messages = frames.control as StatsServerMessage[];
    assert.equal(messages[0]?.type, 'container');
    const history = messages.find((m) => m.type === 'history');
    assert.ok(history && history.type === 'history' && history.samples.length >= 2);
    const sample = messages.find((m) => m.type === 'sample');
    assert.ok(sample && sample.type === 'sample' && sample.containerId === container.id);
    assert.ok(sample.sample.cpuPercent > 0, 'CPU % comes from usage deltas');
    const rest = await user.request('GET', `/api/containers/${container.id}/stats`);
    assert.ok(rest.body.samples.length >= 3);
    await user.request('DELETE', `/api/containers/${container.id}`);
    await frames.until('removal', () =>
      messages.some((m) => m.type === 'container' && m.container.state === 'removed'),
    );
    frames.ws.close();
  });

  it('removes a container nobody watches after the idle timeout, and says why', async () => {
    const { client, runtime } = await serve({ idleTimeout: '400ms' });
    const user = client();
    const container = await user.createContainer();
    const frames = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await frames.until('attached', () => frames.binary.length > 0);
    await sleep(700);
    assert.equal(
      (await user.request('GET', `/api/containers/${container.id}`)).body.state,
      'running',
      'watched is not idle',
    );
    frames.ws.close();
    const deadline = Date.now() + 5000;
    let gone = await user.request('GET', `/api/containers/${container.id}`);
    while (gone.body.state !== 'removed' && Date.now() < deadline) {
      await sleep(50);
      gone = await user.request('GET', `/api/containers/${container.id}`);
    }
    assert.deepEqual(runtime.removed, [container.id]);
    assert.equal(gone.body.state, 'removed');
    assert.equal(gone.body.exitReason, 'idle');
    assert.equal((await user.request('GET', '/api/containers')).body.length, 0);
  });

  it('ends a container at its maximum lifetime and tells attached clients', async () => {
    const { client } = await serve({ maxLifetime: '500ms' });
    const user = client();
    const container = await user.createContainer();
    const frames = new Frames(user.socket(`/api/containers/${container.id}/terminals/0`));
    await frames.until('exit', () => frames.control.some((m) => m.type === 'exit'), 5000);
    assert.deepEqual(frames.control.at(-1), { type: 'exit', exitCode: 137, reason: 'lifetime' });
    await frames.until('close', () => frames.closed !== null);
    assert.equal(frames.closed?.code, WS_CLOSE.NORMAL);
  });

  it('on close, tells clients and removes every container it started', async () => {
    const { server, client, runtime } = await serve();
    const user = client();
    await user.request('GET', '/healthz');
    const containers = await Promise.all([user.createContainer(), user.createContainer(), client().createContainer()]);
    const frames = new Frames(user.socket(`/api/containers/${containers[0]!.id}/terminals/0`));
    const stats = new Frames(user.socket('/api/stats'));
    await frames.until('attached', () => frames.binary.length > 0);
    await stats.until('open', () => stats.opened);
    const startedAt = Date.now();
    await server.close();
    assert.ok(Date.now() - startedAt < 5000);
    assert.deepEqual(new Set(runtime.removed), new Set(containers.map((c) => c.id)));
    assert.equal(runtime.records.size, 0);
    await frames.until('exit', () => frames.closed !== null);
    assert.deepEqual(
      frames.control.find((m) => m.type === 'exit'),
      { type: 'exit', exitCode: 137, reason: 'shutdown' },
    );
    await stats.until('closed', () => stats.closed !== null);
    assert.equal(stats.closed?.code, WS_CLOSE.GOING_AWAY);
  });

  it('serves /metrics in Prometheus text format', async () => {
    const { client } = await serve();
    const user = client();
    await user.createContainer();
    const reply = await user.request('GET', '/metrics');
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /text\/plain/);
    assert.match(reply.text, /mdocker_containers\{state="running"\} 1/);
    assert.match(reply.text, /mdocker_terminals 1/);
    assert.match(reply.text, /mdocker_websocket_clients\{endpoint="terminal"\} 0/);
    assert.match(reply.text, /mdocker_container_create_seconds_count\{outcome="ok"\} 1/);
    assert.match(reply.text, /mdocker_terminal_bytes_total/);
  });
});

before(() => {
  process.on('unhandledRejection', (err) => {
    throw err;
  });
});
