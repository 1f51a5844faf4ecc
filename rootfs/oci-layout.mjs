/**
 * Writes an OCI image layout of one layer from a root filesystem's tar (as mmdebstrap
 * makes it), for `mdocker load -i`: the layer gzip-compressed, a config whose diff id is
 * the tar's sha256, a manifest, and index.json naming it once per --tag.
 *
 *   node rootfs/oci-layout.mjs ROOTFS.tar LAYOUT_DIR --architecture amd64 --tag debian:latest
 *     [--tag ...] [--description TEXT] [--created-by TEXT] [--cmd bash]
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    architecture: { type: 'string' },
    tag: { type: 'string', multiple: true },
    description: { type: 'string' },
    'created-by': { type: 'string' },
    cmd: { type: 'string', default: 'bash' },
  },
});
if (positionals.length !== 2 || !values.architecture || !values.tag?.length) {
  console.error('usage: node rootfs/oci-layout.mjs ROOTFS.tar LAYOUT_DIR --architecture ARCH --tag NAME:TAG...');
  process.exit(2);
}
const [tarPath, layoutDir] = positionals;
// dpkg's architecture names where they differ from OCI's (GOARCH).
const OCI_ARCH = { i386: '386', armhf: 'arm', armel: 'arm', ppc64el: 'ppc64le' };
const architecture = OCI_ARCH[values.architecture] ?? values.architecture;

const blobsDir = join(layoutDir, 'blobs/sha256');
await mkdir(blobsDir, { recursive: true });

/** Hashes what passes through it. */
function hashing(hash) {
  return new Transform({
    transform(chunk, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

async function writeBlob(bytes) {
  const digest = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(blobsDir, digest), bytes);
  return { digest: `sha256:${digest}`, size: bytes.length };
}

const diffHash = createHash('sha256');
const layerHash = createHash('sha256');
let layerSize = 0;
const partial = join(blobsDir, 'layer.partial');
await pipeline(
  createReadStream(tarPath),
  hashing(diffHash),
  createGzip({ level: 6 }),
  hashing(layerHash),
  new Transform({
    transform(chunk, _encoding, callback) {
      layerSize += chunk.length;
      callback(null, chunk);
    },
  }),
  createWriteStream(partial),
);
const layerDigest = layerHash.digest('hex');
await rename(partial, join(blobsDir, layerDigest));

const created = new Date().toISOString();
const config = {
  created,
  architecture,
  os: 'linux',
  config: {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: [values.cmd],
    ...(values.description ? { Labels: { 'org.opencontainers.image.description': values.description } } : {}),
  },
  rootfs: { type: 'layers', diff_ids: [`sha256:${diffHash.digest('hex')}`] },
  history: [{ created, created_by: values['created-by'] ?? 'rootfs/oci-layout.mjs' }],
};
const configBlob = await writeBlob(Buffer.from(JSON.stringify(config)));
const manifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: layerSize },
  ],
};
const manifestBlob = await writeBlob(Buffer.from(JSON.stringify(manifest)));
await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
await writeFile(
  join(layoutDir, 'index.json'),
  JSON.stringify({
    schemaVersion: 2,
    manifests: values.tag.map((tag) => ({
      mediaType: manifest.mediaType,
      ...manifestBlob,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    })),
  }),
);
console.log(`oci-layout: ${layoutDir}: ${values.tag.join(', ')} (layer ${(layerSize / 1024 ** 2).toFixed(1)} MiB)`);
