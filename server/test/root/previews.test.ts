// Previews on the real runtime: busybox httpd and a WebSocket server written in busybox
// sh inside a container, reached through the server's preview hosts (a socket opened in
// the container's network namespace), on an origin that never carries the playground's
// session.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../src/http/server.js';
import type { ClassJson, PortJson, StatsServerMessage } from '../../src/protocol/index.js';
import { rootOnly, waitFor } from './helpers.js';
import { Client, Frames } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();
let real: RealServer;
let server: RunningServer;

/** A CGI that shows the Cookie header the container received and tries to set cookies. */
const CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo "Set-Cookie: wide=1; Domain=preview.localhost; Path=/"
echo "Set-Cookie: mdocker_session=planted; Path=/"
echo "Set-Cookie: own=2; Path=/"
echo
echo "cookie=$HTTP_COOKIE"
`;

/** Declares 3 MB and sends 200 kB, or declares 100 kB and sends 300 kB, then ends. */
const SHORT = `#!/bin/sh
printf 'Content-Type: application/octet-stream\\nContent-Length: 3000000\\n\\n'
head -c 200000 /dev/zero
`;
const LONG = `#!/bin/sh
printf 'Content-Type: application/octet-stream\\nContent-Length: 100000\\n\\n'
head -c 300000 /dev/zero
`;

const REDIRECT = `#!/bin/sh
echo "Status: 302 Found"
echo "Location: http://example.invalid/elsewhere"
echo
`;

/**
 * A WebSocket server in busybox sh, one connection per run (nc -ll -e): it records the
 * request's headers, answers the handshake (and tries a wide cookie), sends "hello",
 * reads one 5-byte masked frame from the client, answers "got it" and ends.
 */
const WS_SERVER = `#!/bin/sh
key=
cr=$(printf '\\r')
while IFS= read -r line; do
  line=\${line%"$cr"}
  [ -z "$line" ] && break
  echo "$line" >> /tmp/ws-headers
  case "$line" in
    [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=\${line#*: } ;;
  esac
done
accept=$(printf '%s' "\${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11" | sha1sum | cut -d' ' -f1 | sed 's/../\\\\x&/g')
accept=$(printf "$accept" | base64)
printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: %s\\r\\nSet-Cookie: ws=1; Domain=preview.localhost\\r\\n\\r\\n' "$accept"
printf '\\201\\005hello'
dd bs=11 count=1 of=/tmp/ws-frame 2>/dev/null
printf '\\201\\006got it'
`;

interface Plain {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A request to the server with this Host (Node may not resolve *.preview.localhost). */
function get(host: string, path: string, headers: Record<string, string> = {}): Promise<Plain> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: server.port, path, method: 'GET', headers: { host, ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A GET's whole body, or `aborted` when the answer was cut before its Content-Length. */
function getBytes(
  host: string,
  path: string,
): Promise<{ status: number; length?: string; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = (aborted: boolean): void =>
        resolve({
          status: res.statusCode ?? 0,
          length: res.headers['content-length'],
          body: Buffer.concat(chunks),
          aborted,
        });
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done(false));
      res.on('error', () => done(true));
    });
    req.on('error', reject);
    req.end();
  });
}

function hostOf(previewUrl: string): string {
  return new URL(previewUrl).host;
}

/** A raw WebSocket upgrade to a preview host, left open; resolves with the answer's head. */
function rawUpgrade(host: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    let data = '';
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n\r\n')) resolve({ socket, head: data.slice(0, data.indexOf('\r\n\r\n')) });
    });
    socket.write(
      `GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
  });
}

describe('previews of a container port', { skip }, () => {
  before(async () => {
    real = await startRealServer('previews-test');
    server = real.server;
  });
  after(() => real?.close());

  it('lists a listening port within a second and serves it over HTTP and WebSocket on its own origin, never with the playground session', async () => {
    const base = `http://127.0.0.1:${server.port}/`;
    const owner = new Client(base);
    // A whole CPU: 32 WebSocket handshakes in busybox sh below take a few hundred forks.
    const container = await owner.create({ cpus: 1 });
    const id = container.id;
    const stats = new Frames(owner.socket('/api/stats'));
    await stats.until('the stats stream', () => stats.opened);
    const exec = async (cmd: string[]): Promise<string> => {
      const reply = await owner.request('POST', `/api/containers/${id}/exec`, { cmd });
      assert.equal(reply.status, 200, reply.text);
      assert.equal((reply.body as { exitCode: number }).exitCode, 0, reply.text);
      return (reply.body as { stdout: string }).stdout;
    };
    const writeFile = (path: string, text: string): Promise<string> =>
      exec(['sh', '-c', 'printf "%s" "$2" > "$1" && chmod +x "$1"', 'sh', path, text]);

    await exec(['sh', '-c', 'mkdir -p /tmp/www/cgi-bin && echo "<h1>hello from httpd</h1>" > /tmp/www/index.html']);
    await writeFile('/tmp/www/cgi-bin/env', CGI);
    await writeFile('/tmp/www/cgi-bin/redirect', REDIRECT);
    await writeFile('/tmp/www/cgi-bin/short', SHORT);
    await writeFile('/tmp/www/cgi-bin/long', LONG);
    await exec(['sh', '-c', 'seq 1 600000 > /tmp/www/big.txt']);
    await writeFile('/tmp/ws.sh', WS_SERVER);
    assert.deepEqual((await owner.request('GET', `/api/containers/${id}/ports`)).body, [], 'nothing listens yet');

    const portsPushed = (port: number): PortJson | undefined => {
      for (const message of [...(stats.control as StatsServerMessage[])].reverse()) {
        if (message.type === 'ports' && message.containerId === id) return message.ports.find((p) => p.port === port);
      }
      return undefined;
    };
    await exec(['httpd', '-p', '8000', '-h', '/tmp/www']);
    const startedAt = Date.now();
    const pushed = await stats.until('8000 on the stats stream', () => portsPushed(8000) !== undefined, 5000);
    void pushed;
    const listedAfterMs = Date.now() - startedAt;
    assert.ok(listedAfterMs <= 1000, `ports listed 8000 after ${listedAfterMs} ms`);
    const port8000 = portsPushed(8000)!;
    assert.equal(port8000.protocol, 'tcp');
    assert.match(port8000.previewUrl, new RegExp(`^http://[a-z2-7]{26}-8000\\.preview\\.localhost:${server.port}/$`));
    const listed = (await owner.request('GET', `/api/containers/${id}/ports`)).body as PortJson[];
    assert.deepEqual(listed, [port8000], 'the route lists the same port and URL');

    // Another session cannot see the ports (404), as it cannot see the container.
    const stranger = new Client(base);
    await stranger.request('GET', '/healthz');
    assert.equal((await stranger.request('GET', `/api/containers/${id}/ports`)).status, 404);

    // HTTP through the preview host.
    const host = hostOf(port8000.previewUrl);
    const page = await get(host, '/');
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /hello from httpd/);
    assert.ok(!(page.headers['set-cookie'] ?? []).some((c) => c.startsWith('mdocker_')), 'no playground cookie set');

    // The playground's cookies are not forwarded; the preview's own are. Set-Cookie with a
    // Domain, or named as the playground's, never reaches the browser.
    const env = await get(host, '/cgi-bin/env', { cookie: `${owner.cookie}; mdocker_token=x; own=2` });
    assert.equal(env.status, 200, env.text);
    assert.equal(env.text.trim(), 'cookie=own=2');
    assert.deepEqual(env.headers['set-cookie'], ['own=2; Path=/']);

    // A body larger than the proxy's relay buffer arrives whole, byte for byte; one cut
    // short by the container is cut short for the browser too, never a shorter whole one;
    // one followed by more bytes than its Content-Length ends at its Content-Length.
    const expected = Buffer.from(Array.from({ length: 600000 }, (_, i) => `${i + 1}\n`).join(''));
    const big = await getBytes(host, '/big.txt');
    assert.equal(big.status, 200);
    assert.equal(big.aborted, false);
    assert.equal(big.length, String(expected.length));
    assert.ok(big.body.equals(expected), `big.txt: ${big.body.length} bytes, not the file's ${expected.length}`);
    const short = await getBytes(host, '/cgi-bin/short');
    assert.equal(short.status, 200);
    assert.equal(short.aborted, true, `a 3000000-byte answer ended cleanly after ${short.body.length} bytes`);
    const long = await getBytes(host, '/cgi-bin/long');
    assert.equal(long.aborted, false);
    assert.equal(long.body.length, 100000);

    // A redirect is passed on, never followed.
    const redirect = await get(host, '/cgi-bin/redirect');
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, 'http://example.invalid/elsewhere');

    // The playground's API refuses a write from the preview's origin.
    const fromPreview = await owner.request('POST', '/api/containers', {}, { origin: `http://${host}` });
    assert.equal(fromPreview.status, 403, fromPreview.text);
    // And it never answers on a preview host: that is the container's server answering.
    const apiOnPreview = await get(host, '/api/containers', { cookie: owner.cookie });
    assert.ok(!apiOnPreview.text.includes(id), 'the playground API is not served on a preview host');

    // Wrong tokens, a token with another port, a port that stopped listening.
    assert.equal((await get(`${'a'.repeat(26)}-8000.preview.localhost:${server.port}`, '/')).status, 404);
    assert.equal((await get(host.replace('-8000.', '-8001.'), '/')).status, 404);
    assert.equal((await get(`preview.localhost:${server.port}`, '/')).status, 404);

    // WebSocket through the preview (a handshake written by hand in busybox sh).
    await exec(['sh', '-c', 'nc -ll -p 8001 -e /tmp/ws.sh </dev/null >/dev/null 2>&1 &']);
    await stats.until('8001 on the stats stream', () => portsPushed(8001) !== undefined, 5000);
    const wsHost = hostOf(portsPushed(8001)!.previewUrl);
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, {
      headers: { host: wsHost, cookie: `${owner.cookie}; other=3` },
    });
    const messages: string[] = [];
    let upgradeCookies: string[] | undefined;
    ws.on('upgrade', (res) => (upgradeCookies = res.headers['set-cookie']));
    ws.on('message', (data: Buffer) => {
      messages.push(data.toString());
      if (messages.length === 1) ws.send('ping!');
    });
    await waitFor('both messages through the tunnel', () => messages.length === 2, 10_000);
    assert.deepEqual(messages, ['hello', 'got it']);
    assert.equal(upgradeCookies, undefined, "the 101's Domain cookie was dropped");
    // The script ends after its answer: the tunnel closes (and its connection is released
    // by then) before the client hears of it.
    await new Promise((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve(null) : ws.once('close', resolve)));
    const seen = await exec(['cat', '/tmp/ws-headers']);
    assert.match(seen, /^Upgrade: websocket$/im);
    assert.match(seen, /^cookie: other=3$/im, seen);
    assert.doesNotMatch(seen, /mdocker_session/);

    // At most 32 preview connections to one container at once.
    await exec(['rm', '-f', '/tmp/ws-headers']);
    const open: Socket[] = [];
    for (let i = 0; i < 32; i++) {
      const { socket, head } = await rawUpgrade(wsHost);
      assert.match(head, /^HTTP\/1\.1 101 /, `connection ${i}: ${head}`);
      open.push(socket);
    }
    const refused = await rawUpgrade(wsHost);
    assert.match(refused.head, /^HTTP\/1\.1 503 /, refused.head);
    refused.socket.destroy();
    assert.equal((await get(host, '/')).status, 503, 'HTTP counts against the same cap');
    for (const socket of open) socket.destroy();
    await waitFor('room again', async () => (await get(host, '/')).status === 200, 5000);

    // A server on [::1] only: 127.0.0.1 is refused, the proxy tries ::1.
    await exec(['httpd', '-p', '[::1]:8002', '-h', '/tmp/www']);
    const port8002 = await waitFor('8002 listed', async () => {
      const ports = (await owner.request('GET', `/api/containers/${id}/ports`)).body as PortJson[];
      return ports.find((p) => p.port === 8002);
    });
    const v6 = await get(hostOf(port8002.previewUrl), '/');
    assert.equal(v6.status, 200, v6.text);
    assert.match(v6.text, /hello from httpd/);

    // A listed port nobody listens on any more: 502, the link stays valid.
    await exec(['killall', 'httpd']);
    // killall returns once the signal is sent; the socket closes as httpd exits.
    await waitFor('8000 closed', async () => {
      const ports = (await owner.request('GET', `/api/containers/${id}/ports`)).body as PortJson[];
      return !ports.some((p) => p.port === 8000);
    });
    const closed = await get(host, '/');
    assert.equal(closed.status, 502, closed.text);
    assert.match(closed.text, /nothing listens on port 8000/);

    // The preview dies with the container.
    stats.ws.close();
    assert.equal((await owner.request('DELETE', `/api/containers/${id}`)).status, 204);
    const stale = await get(host, '/');
    assert.equal(stale.status, 404, stale.text);
  });

  it("lets the teacher read a student's ports, and nobody else", async () => {
    const base = `http://127.0.0.1:${server.port}/`;
    // A token-less loopback server: the local user is the teacher.
    const teacher = new Client(base);
    await teacher.request('GET', '/healthz');
    const created = await teacher.request('POST', '/api/classes', { name: 'previews' });
    assert.equal(created.status, 201, created.text);
    const cls = created.body as ClassJson;
    const student = new Client(base);
    assert.equal((await student.request('POST', '/api/join', { code: cls.joinCode, name: 'ada' })).status, 201);
    const container = await student.create();
    const started = await student.request('POST', `/api/containers/${container.id}/exec`, {
      cmd: ['sh', '-c', 'mkdir -p /tmp/www && echo student-page > /tmp/www/index.html && httpd -p 8000 -h /tmp/www'],
    });
    assert.equal(started.status, 200, started.text);
    const listed = await waitFor('the teacher sees 8000', async () => {
      const reply = await teacher.request('GET', `/api/containers/${container.id}/ports`);
      assert.equal(reply.status, 200, reply.text);
      const ports = reply.body as PortJson[];
      return ports.length > 0 ? ports : null;
    });
    assert.deepEqual(
      listed.map((p) => p.port),
      [8000],
    );
    const own = (await student.request('GET', `/api/containers/${container.id}/ports`)).body as PortJson[];
    assert.deepEqual(own, listed, 'one link per container and port, whoever asks');
    const page = await get(hostOf(listed[0]!.previewUrl), '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /student-page/);
    const classmate = new Client(base);
    assert.equal((await classmate.request('POST', '/api/join', { code: cls.joinCode, name: 'bob' })).status, 201);
    assert.equal((await classmate.request('GET', `/api/containers/${container.id}/ports`)).status, 404);
    assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
  });
});
