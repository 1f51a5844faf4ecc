/**
 * The registry client's authentication against a registry of the test's own (Node's http):
 * the bearer-token flow Docker Hub uses, anonymous and with the credentials `mdocker login`
 * keeps (sent to the token service as basic auth), and a registry that lies about a
 * manifest's digest; a registry off loopback (the host's own address) needs
 * --insecure-registry for plain HTTP or a certificate nobody signed; basic auth.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loginRegistry, pullImageReference } from '../../src/runtime/images.js';
import { writeCredentials } from '../../src/runtime/images/credentials.js';
import { rootOnly } from './helpers.js';
import { allBlobs, image, layer, makeTar, type Blob, type ImageParts } from './oci-builder.js';

const skip = rootOnly();

describe('registry authentication', { skip }, () => {
  let dir: string;
  let server: Server;
  let host: string;
  let parts: ImageParts;
  const tokenRequests: Array<{ scope: string | null; authorization: string | undefined }> = [];
  let requireLogin = false;
  let lieAboutDigest = false;

  function blobOf(digest: string): Blob | undefined {
    return allBlobs(parts).find((b) => b.digest === digest);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      const authorization = req.headers.authorization;
      tokenRequests.push({ scope: url.searchParams.get('scope'), authorization });
      const good = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
      if (requireLogin && authorization !== good) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-123' }));
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-123') {
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:team/app:pull"`,
        })
        .end();
      return;
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    const manifest = /^\/v2\/team\/app\/manifests\/(.+)$/.exec(url.pathname);
    if (manifest) {
      const headers: Record<string, string> = { 'content-type': parts.manifest.mediaType };
      headers['docker-content-digest'] = lieAboutDigest ? `sha256:${'0'.repeat(64)}` : parts.manifest.digest;
      res.writeHead(200, headers).end(parts.manifest.bytes);
      return;
    }
    const blob = /^\/v2\/team\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const found = blob ? blobOf(blob[1]!) : undefined;
    if (found) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(found.bytes);
      return;
    }
    res.writeHead(404).end();
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-auth-'));
    process.env['MDOCKER_DATA_DIR'] = join(dir, 'data');
    parts = image([layer(await makeTar([{ name: 'hello', content: 'hi\n' }]))], { Cmd: ['/hello'] });
    server = createServer(handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    assert.equal(createHash('sha256').update(parts.manifest.bytes).digest('hex'), parts.manifest.digest.slice(7));
  });

  after(async () => {
    delete process.env['MDOCKER_DATA_DIR'];
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('gets an anonymous token scoped to the repository and pulls with it', async () => {
    const result = await pullImageReference(`${host}/team/app:v1`);
    assert.equal(result.id, parts.config.digest);
    assert.deepEqual(tokenRequests.at(-1), { scope: 'repository:team/app:pull', authorization: undefined });
  });

  it('refuses a login the token service refuses, and keeps one it accepts (0600) for the next pulls', async () => {
    requireLogin = true;
    await assert.rejects(pullImageReference(`${host}/team/app:v1`), /token service .* answered 401/);
    await assert.rejects(loginRegistry(host, 'alice', 'wrong'), /answered 401/);
    assert.equal(await loginRegistry(host, 'alice', 's3cret'), host);
    const auth = await stat(join(dir, 'data/auth.json'));
    assert.equal(auth.mode & 0o777, 0o600);
    await pullImageReference(`${host}/team/app:v1`);
    assert.equal(tokenRequests.at(-1)?.authorization, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    requireLogin = false;
  });

  it('refuses a manifest whose digest the registry misstates', async () => {
    lieAboutDigest = true;
    await assert.rejects(pullImageReference(`${host}/team/app:v1`), /does not match its digest/);
    lieAboutDigest = false;
  });
});

/** The host's first non-loopback IPv4 address: a registry there is not loopback. */
function externalAddress(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

const external = externalAddress();
const transportSkip =
  rootOnly() ||
  (external === null ? 'needs a non-loopback IPv4 address' : false) ||
  (spawnSync('openssl', ['version']).status === 0 ? false : 'needs openssl');

describe('registry transport and basic auth', { skip: transportSkip }, () => {
  let dir: string;
  let parts: ImageParts;
  const servers: Server[] = [];

  /** A registry with basic auth (alice:s3cret) serving parts, over TLS when given a key. */
  async function startRegistry(tls: { key: Buffer; cert: Buffer } | null): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      const path = req.url ?? '/';
      if (path === '/v2/') return void res.writeHead(200).end('{}');
      if (/^\/v2\/team\/app\/manifests\//.test(path)) {
        return void res.writeHead(200, { 'content-type': parts.manifest.mediaType }).end(parts.manifest.bytes);
      }
      const found = allBlobs(parts).find((b) => path === `/v2/team/app/blobs/${b.digest}`);
      if (found) return void res.writeHead(200).end(found.bytes);
      res.writeHead(404).end();
    };
    const server = tls ? createHttpsServer(tls, handler) : createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, external!, resolve));
    const address = server.address();
    return `${external}:${typeof address === 'object' && address ? address.port : 0}`;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mdocker-transport-'));
    process.env['MDOCKER_DATA_DIR'] = join(dir, 'data');
    parts = image([layer(await makeTar([{ name: 'tls', content: 'ok\n' }]))], { Cmd: ['/tls'] });
  });

  after(async () => {
    delete process.env['MDOCKER_DATA_DIR'];
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an unverified certificate and plain HTTP off loopback, unless the registry is named insecure', async () => {
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-registry'].concat([
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]),
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const tlsHost = await startRegistry({
      key: await readFile(join(dir, 'key.pem')),
      cert: await readFile(join(dir, 'cert.pem')),
    });
    const httpHost = await startRegistry(null);
    await writeCredentials(tlsHost, { username: 'alice', password: 's3cret' });
    await writeCredentials(httpHost, { username: 'alice', password: 's3cret' });
    await assert.rejects(pullImageReference(`${tlsHost}/team/app:v1`), /certificate.*--insecure-registry/s);
    await assert.rejects(pullImageReference(`${httpHost}/team/app:v1`), /--insecure-registry/);
    assert.equal(
      (await pullImageReference(`${tlsHost}/team/app:v1`, { insecureRegistries: [tlsHost] })).id,
      parts.config.digest,
    );
    assert.equal(
      (await pullImageReference(`${httpHost}/team/app:v1`, { insecureRegistries: [httpHost] })).id,
      parts.config.digest,
    );
  });

  it('asks for a login when a basic-auth registry has no credentials', async () => {
    const host = await startRegistry(null);
    await assert.rejects(
      pullImageReference(`${host}/team/app:v1`, { insecureRegistries: [host] }),
      /needs a login \(mdocker login/,
    );
  });
});
