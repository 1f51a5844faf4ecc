/**
 * Images in files: `load` takes a `docker save` archive or an OCI image layout (a
 * directory or a tar of one); `save` writes an OCI archive (a tar of an OCI layout).
 * An archive's entry names are only keys in a table here: nothing of one is written to
 * the filesystem by its own name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { extract, pack } from 'tar-stream';
import { z } from 'zod';
import { MdockerError } from '../errors.js';
import {
  INDEX_MEDIA_TYPES,
  MEDIA_TYPES,
  indexSchema,
  parseDocument,
  selectPlatform,
  type Descriptor,
  type ImageIndex,
} from './oci.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import type { BlobSource, ImageRecord, ImageStore } from './store.js';

const MAX_ARCHIVE_ENTRIES = 100_000;
const MAX_INDEX_DEPTH = 4;

/** Files of an archive or a layout, by their names inside it. */
interface ArchiveFiles {
  /** The file's bytes as a stream, or null when it has no such file. */
  open(name: string): Promise<Readable | null>;
  cleanup(): Promise<void>;
}

function normalizeName(name: string): string | null {
  const normal = posix.normalize(`/${name}`).slice(1);
  return normal === '' || normal.startsWith('..') ? null : normal;
}

/** A directory (an OCI layout): names are resolved below it, never above. */
function directoryFiles(dir: string): ArchiveFiles {
  return {
    open: async (name) => {
      const normal = normalizeName(name);
      if (normal === null) return null;
      try {
        const handle = await open(join(dir, normal), 'r');
        return handle.createReadStream();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    cleanup: async () => undefined,
  };
}

/**
 * A tar archive, read once: each regular file goes to a numbered file in workDir, its
 * name kept in a table; symlinks (docker save links layers to each other) are followed in
 * the table only.
 */
async function tarFiles(path: string, workDir: string, maxBytes: number): Promise<ArchiveFiles> {
  await mkdir(workDir, { mode: 0o700 });
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  const tar = extract();
  let count = 0;
  let total = 0;
  const consume = (async () => {
    for await (const entry of tar) {
      if (++count > MAX_ARCHIVE_ENTRIES) throw new MdockerError('LIMIT_EXCEEDED', 'archive has too many entries');
      const name = normalizeName(entry.header.name);
      if (name !== null && (entry.header.type === 'file' || entry.header.type === 'contiguous-file')) {
        const stored = join(workDir, String(count));
        const out = createWriteStream(stored, { mode: 0o600, flags: 'wx' });
        for await (const chunk of entry) {
          total += (chunk as Buffer).length;
          if (total > maxBytes) throw new MdockerError('LIMIT_EXCEEDED', `archive larger than ${maxBytes} bytes`);
          if (!out.write(chunk)) await once(out, 'drain');
        }
        out.end();
        await finished(out);
        files.set(name, stored);
      } else if (name !== null && entry.header.type === 'symlink' && entry.header.linkname) {
        const target = normalizeName(posix.join(posix.dirname(name), entry.header.linkname));
        if (target !== null) links.set(name, target);
      } else if (name !== null && entry.header.type === 'link' && entry.header.linkname) {
        const target = normalizeName(entry.header.linkname);
        if (target !== null) links.set(name, target);
      }
      entry.resume();
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(path), tar), consume]);
  } catch (err) {
    tar.destroy();
    await consume.catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
    if (err instanceof MdockerError) throw err;
    throw new MdockerError('INVALID_ARGUMENT', `${path} is not a readable tar archive: ${String(err)}`);
  }
  const resolve = (name: string): string | undefined => {
    let current = name;
    for (let hops = 0; hops < 16; hops++) {
      const file = files.get(current);
      if (file !== undefined) return file;
      const next = links.get(current);
      if (next === undefined) return undefined;
      current = next;
    }
    return undefined;
  };
  return {
    open: async (name) => {
      const normal = normalizeName(name);
      const stored = normal === null ? undefined : resolve(normal);
      return stored === undefined ? null : createReadStream(stored);
    },
    cleanup: () => rm(workDir, { recursive: true, force: true }),
  };
}

async function readAll(stream: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      stream.destroy();
      throw new MdockerError('LIMIT_EXCEEDED', `${what} is over ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A layout's blob by its digest: blobs/sha256/<hex>. */
function layoutSource(files: ArchiveFiles): BlobSource {
  return {
    open: async (descriptor: Descriptor) => {
      const stream = await files.open(`blobs/sha256/${descriptor.digest.slice('sha256:'.length)}`);
      if (stream === null) throw new MdockerError('NOT_FOUND', `the archive lacks blob ${descriptor.digest}`);
      return stream;
    },
  };
}

const dockerManifestSchema = z
  .array(
    z.object({
      Config: z.string().max(4096),
      RepoTags: z.array(z.string().max(512)).nullish(),
      Layers: z.array(z.string().max(4096)).max(128),
    }),
  )
  .max(1024);

async function digestOf(stream: Readable): Promise<{ digest: string; size: number; head: Buffer }> {
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  for await (const chunk of stream) {
    const data = chunk as Buffer;
    if (head.length < 4) head = Buffer.concat([head, data.subarray(0, 4 - head.length)]);
    hash.update(data);
    size += data.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, head };
}

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MEDIA_TYPES.ociLayerGzip;
  if (head.readUInt32LE(0) === 0xfd2fb528) return MEDIA_TYPES.ociLayerZstd;
  return MEDIA_TYPES.ociLayer;
}

export interface LoadedImage {
  id: string;
  references: string[];
}

/** The manifest of the host's platform an index or manifest descriptor leads to. */
async function platformManifest(
  store: ImageStore,
  descriptor: Descriptor,
  source: BlobSource,
  depth = 0,
): Promise<Descriptor> {
  if (!INDEX_MEDIA_TYPES.includes(descriptor.mediaType)) return descriptor;
  if (depth >= MAX_INDEX_DEPTH) throw new MdockerError('INVALID_ARGUMENT', 'indexes nested too deep');
  await store.ensureBlob(descriptor, source);
  const index: ImageIndex = parseDocument(
    indexSchema,
    await store.readBlob(descriptor.digest),
    `index ${descriptor.digest}`,
  );
  return platformManifest(store, selectPlatform(index), source, depth + 1);
}

function referenceFromAnnotations(annotations: Record<string, string> | undefined): ImageReference | null {
  const name = annotations?.['io.containerd.image.name'] ?? annotations?.['org.opencontainers.image.ref.name'];
  // A bare tag ("latest") names no repository: such an image loads untagged.
  if (name === undefined || (!name.includes('/') && !name.includes(':'))) return null;
  try {
    return parseReference(name);
  } catch {
    return null;
  }
}

/**
 * Loads every image of a `docker save` archive or an OCI layout (directory or tar) into the
 * store. The archive's manifests and blobs are verified as a registry's are.
 */
export async function loadImages(store: ImageStore, path: string): Promise<LoadedImage[]> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch {
    throw new MdockerError('NOT_FOUND', `no such file: ${path}`);
  }
  const files = isDirectory
    ? directoryFiles(path)
    : await tarFiles(
        path,
        join(store.root, 'tmp', `load-${randomBytes(8).toString('hex')}`),
        store.limits.maxImageBytes,
      );
  try {
    const index = await files.open('index.json');
    if (index !== null)
      return await loadLayout(store, files, await readAll(index, store.limits.maxDocumentBytes, 'index.json'));
    const manifest = await files.open('manifest.json');
    if (manifest !== null) {
      return await loadDockerArchive(
        store,
        files,
        await readAll(manifest, store.limits.maxDocumentBytes, 'manifest.json'),
      );
    }
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `${path} is neither an OCI layout (index.json) nor a docker save archive (manifest.json)`,
    );
  } finally {
    await files.cleanup();
  }
}

async function loadLayout(store: ImageStore, files: ArchiveFiles, indexBytes: Buffer): Promise<LoadedImage[]> {
  const index = parseDocument(indexSchema, indexBytes, 'index.json');
  const source = layoutSource(files);
  const loaded: LoadedImage[] = [];
  for (const entry of index.manifests) {
    const manifest = await platformManifest(store, entry, source);
    const reference = referenceFromAnnotations(entry.annotations);
    const image = await store.importImage(manifest, source, reference ? [reference] : []);
    loaded.push({ id: image.id, references: reference ? [formatReference(reference)] : [] });
  }
  return loaded;
}

async function loadDockerArchive(
  store: ImageStore,
  files: ArchiveFiles,
  manifestBytes: Buffer,
): Promise<LoadedImage[]> {
  let json: unknown;
  try {
    json = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new MdockerError('INVALID_ARGUMENT', 'manifest.json is not JSON');
  }
  const parsed = dockerManifestSchema.safeParse(json);
  if (!parsed.success) throw new MdockerError('INVALID_ARGUMENT', 'manifest.json is not a docker save manifest');
  const loaded: LoadedImage[] = [];
  for (const entry of parsed.data) {
    const byDigest = new Map<string, string>();
    const describe = async (name: string, what: string) => {
      const stream = await files.open(name);
      if (stream === null) throw new MdockerError('INVALID_ARGUMENT', `the archive lacks ${what} ${name}`);
      const found = await digestOf(stream);
      byDigest.set(found.digest, name);
      return found;
    };
    const config = await describe(entry.Config, 'config');
    const layers = [];
    for (const name of entry.Layers) {
      const layer = await describe(name, 'layer');
      layers.push({ mediaType: layerMediaType(layer.head), digest: layer.digest, size: layer.size });
    }
    const source: BlobSource = {
      open: async (descriptor) => {
        const name = byDigest.get(descriptor.digest);
        const stream = name === undefined ? null : await files.open(name);
        if (stream === null) throw new MdockerError('NOT_FOUND', `the archive lacks blob ${descriptor.digest}`);
        return stream;
      },
    };
    // docker save has no manifest of its own: the same one an OCI layout would hold.
    const manifestJson = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        config: { mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: config.size },
        layers,
      }),
    );
    const manifestDigest = await store.putBlobBytes(manifestJson);
    const references = (entry.RepoTags ?? []).map((tag) => parseReference(tag));
    const image = await store.importImage(
      { mediaType: MEDIA_TYPES.ociManifest, digest: manifestDigest, size: manifestJson.length },
      source,
      references,
    );
    loaded.push({ id: image.id, references: references.map(formatReference) });
  }
  return loaded;
}

/**
 * Writes the image as an OCI archive at outPath (through a temporary file beside it,
 * renamed once complete), its references annotated as containerd and Docker write them.
 */
export async function saveImage(
  store: ImageStore,
  image: ImageRecord,
  references: string[],
  outPath: string,
): Promise<void> {
  const tmp = `${outPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const archive = pack();
  const written = pipeline(archive, createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
  const add = (name: string, bytes: Buffer) =>
    new Promise<void>((resolve, reject) =>
      archive.entry({ name, mode: 0o644 }, bytes, (err) => (err ? reject(err) : resolve())),
    );
  const addBlob = async (digest: string) => {
    const size = (await stat(store.blobPath(digest))).size;
    const sink = archive.entry({ name: `blobs/sha256/${digest.slice('sha256:'.length)}`, size, mode: 0o644 });
    await pipeline(store.openBlob(digest), sink);
  };
  try {
    await add('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    const manifest = { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestSize };
    const entries = (references.length > 0 ? references : [null]).map((reference) => {
      if (reference === null) return manifest;
      const parsed = parseReference(reference);
      return {
        ...manifest,
        annotations: {
          'io.containerd.image.name': reference,
          'org.opencontainers.image.ref.name': parsed.tag ?? 'latest',
        },
      };
    });
    await add(
      'index.json',
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: entries })),
    );
    const blobs = new Set([image.manifestDigest, image.configDigest, ...image.layers.map((layer) => layer.digest)]);
    for (const digest of blobs) await addBlob(digest);
    archive.finalize();
    await written;
    await rename(tmp, outPath);
  } catch (err) {
    archive.destroy();
    await written.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}
