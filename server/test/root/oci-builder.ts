/**
 * Makes test images from Node: layer tars (any entries, hostile ones included), gzip or
 * zstd compressed, configs, manifests, indexes, written as an OCI image layout directory
 * that skopeo can push to a registry or mdocker can load.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: Header['type'];
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  /** pax records (SCHILY.xattr.NAME for extended attributes); values as UTF-8. */
  pax?: Record<string, string>;
}

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const content = entry.content === undefined ? undefined : Buffer.from(entry.content);
    const header: Partial<Header> & { name: string } = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: new Date(1_700_000_000_000),
      ...(entry.linkname !== undefined ? { linkname: entry.linkname } : {}),
      ...(entry.pax !== undefined ? { pax: entry.pax } : {}),
      ...(type === 'file' ? { size: content?.length ?? 0 } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') p.entry(header, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else p.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function zstd(bytes: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', '-c', '-3'], { input: bytes, maxBuffer: 1024 ** 3 });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
  return r.stdout;
}

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

export function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

export interface BuiltLayer {
  blob: Blob;
  diffId: string;
}

export function layer(tar: Buffer, compression: 'gzip' | 'zstd' | 'none' = 'gzip'): BuiltLayer {
  const base = 'application/vnd.oci.image.layer.v1.tar';
  if (compression === 'none') return { blob: blob(base, tar), diffId: sha256(tar) };
  const bytes = compression === 'gzip' ? gzipSync(tar) : zstd(tar);
  return { blob: blob(`${base}+${compression}`, bytes), diffId: sha256(tar) };
}

export interface ImageParts {
  config: Blob;
  manifest: Blob;
  layers: BuiltLayer[];
}

export function image(
  layers: BuiltLayer[],
  config: Record<string, unknown> = {},
  platform = { architecture: 'amd64', os: 'linux' },
): ImageParts {
  const configJson = {
    ...platform,
    created: '2026-01-02T03:04:05Z',
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  const configBlob = blob('application/vnd.oci.image.config.v1+json', Buffer.from(JSON.stringify(configJson)));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: l.blob.mediaType, digest: l.blob.digest, size: l.blob.size })),
  };
  return {
    config: configBlob,
    manifest: blob('application/vnd.oci.image.manifest.v1+json', Buffer.from(JSON.stringify(manifest))),
    layers,
  };
}

export function descriptor(b: Blob, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size, ...extra };
}

/** An index of several platforms' images, as a blob. */
export function platformIndex(images: Array<{ parts: ImageParts; architecture: string }>): Blob {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map(({ parts, architecture }) =>
      descriptor(parts.manifest, { platform: { architecture, os: 'linux' } }),
    ),
  };
  return blob('application/vnd.oci.image.index.v1+json', Buffer.from(JSON.stringify(index)));
}

/**
 * Writes an OCI layout at dir: blobs, index.json naming `top` (a manifest or an index)
 * with the ref name annotation.
 */
export async function writeLayout(dir: string, top: Blob, blobs: Blob[], refName?: string): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const b of [top, ...blobs]) {
    await writeFile(join(dir, 'blobs/sha256', b.digest.slice(7)), b.bytes);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const annotations = refName === undefined ? {} : { annotations: { 'org.opencontainers.image.ref.name': refName } };
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [descriptor(top, annotations)] }),
  );
}

export function allBlobs(parts: ImageParts): Blob[] {
  return [parts.manifest, parts.config, ...parts.layers.map((l) => l.blob)];
}
