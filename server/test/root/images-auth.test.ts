/**
 * The registry client's authentication against a registry of the test's own (Node's http):
 * the bearer-token flow Docker Hub uses, anonymous and with the credentials `mdocker login`
 * keeps (sent to the token service as basic auth), and a registry that lies about a
 * manifest's digest.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { stat, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loginRegistry, pullImageReference } from '../../src/runtime/images.js';
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
