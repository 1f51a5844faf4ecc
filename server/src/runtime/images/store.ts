/**
 * The image store: content-addressed under <data dir>/images (MDOCKER_DATA_DIR, default
 * /var/lib/mdocker). Blobs by sha256 digest; each layer unpacked once, by diff id, and
 * shared by every image that has it; an image record per config digest (the image id);
 * one file per reference naming its image. Everything is written to tmp/ and renamed into
 * place, reference last: a pull or load that stops half-way leaves no image, and its
 * verified blobs and layers are reused by the next try.
 *
 * Layout:
 *   blobs/sha256/<hex>          manifests, configs, layer blobs, verified
 *   layers/<hex>/root/          a layer unpacked (an overlay lower), <hex> its diff id
 *   layers/<hex>/layer.json     its size and entry count
 *   images/<hex>.json           an image: its manifest, layers and config, <hex> its id
 *   refs/<sha256 of ref>.json   { reference, id }: names are data, never paths
 *   tmp/                        work in progress
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MdockerError } from '../errors.js';
import {
  imageConfigSchema,
  layerCompression,
  manifestSchema,
  parseDocument,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
} from './oci.js';
import { DIGEST_PATTERN, familiarName, formatReference, parseReference, type ImageReference } from './reference.js';
import { DEFAULT_UNPACK_LIMITS, unpackLayer, type UnpackLimits } from './unpack.js';

export const DEFAULT_DATA_DIR = '/var/lib/mdocker';
/** Layers fetched and unpacked at once (each into a directory of its own), as Docker's 3 downloads. */
const LAYER_CONCURRENCY = 3;

/** Runs task on every item, at most limit at once; after a failure no new one starts. */
async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (rejected) throw rejected.reason;
}

export interface StoreLimits {
  /** Any one blob, compressed. */
  maxBlobBytes: number;
  /** Manifests, indexes and configs. */
  maxDocumentBytes: number;
  /** Each layer's decompressed tar and entries. */
  unpack: UnpackLimits;
  /** The sum of an image's layers' decompressed tars. */
  maxImageBytes: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = {
  maxBlobBytes: 4 * 1024 ** 3,
  maxDocumentBytes: 4 * 1024 * 1024,
  unpack: DEFAULT_UNPACK_LIMITS,
  maxImageBytes: 16 * 1024 ** 3,
};

export interface StoreOptions {
  /** The data dir; the store is its images/ (default MDOCKER_DATA_DIR, else /var/lib/mdocker). */
  dataDir?: string;
  limits?: Partial<StoreLimits>;
}

export function dataDir(options: StoreOptions = {}): string {
  return options.dataDir ?? process.env['MDOCKER_DATA_DIR'] ?? DEFAULT_DATA_DIR;
}

export interface LayerRecord {
  /** The blob as the manifest names it. */
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
}

export interface ImageRecord {
  /** The config's digest, as Docker's image id. */
  id: string;
  manifestDigest: string;
  manifestMediaType: string;
  manifestSize: number;
  configDigest: string;
  layers: LayerRecord[];
  /** The config's created time, if it says. */
  created: string | null;
  /** Bytes of the layers' files, unpacked. */
  sizeBytes: number;
  loadedAt: string;
}

export interface ImageSummary extends ImageRecord {
  references: string[];
}

interface RefRecord {
  reference: string;
  id: string;
}

/** Where a blob comes from while importing: a registry, a layout, an archive. */
export interface BlobSource {
  open(descriptor: Descriptor): Promise<Readable>;
}

export interface ImportProgress {
  digest: string;
  totalBytes: number;
  doneBytes: number;
  status: 'exists' | 'downloading' | 'verifying' | 'unpacking' | 'done';
}

export type ProgressListener = (progress: ImportProgress) => void;

function hexOf(digest: string): string {
  if (!DIGEST_PATTERN.test(digest)) throw new MdockerError('INVALID_ARGUMENT', `invalid digest ${digest.slice(0, 80)}`);
  return digest.slice('sha256:'.length);
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** Counts and hashes bytes on their way to disk, stopping at a cap. */
class DigestMeter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(
    private readonly maxBytes: number,
    private readonly onBytes?: (bytes: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(new MdockerError('LIMIT_EXCEEDED', `blob larger than ${this.maxBytes} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}

export class ImageStore {
  readonly root: string;
  readonly limits: StoreLimits;

  private constructor(root: string, limits: StoreLimits) {
    this.root = root;
    this.limits = limits;
  }

  static async open(options: StoreOptions = {}): Promise<ImageStore> {
    const root = join(dataDir(options), 'images');
    const store = new ImageStore(root, { ...DEFAULT_STORE_LIMITS, ...options.limits });
    await mkdir(dataDir(options), { recursive: true, mode: 0o700 });
    // 0700: layers hold the images' setuid files and the unpacker relies on being their
    // only writer.
    await mkdir(root, { recursive: true, mode: 0o700 });
    for (const dir of ['blobs/sha256', 'layers', 'images', 'refs', 'tmp']) {
      await mkdir(join(root, dir), { recursive: true, mode: 0o700 });
    }
    await store.cleanTmp();
    return store;
  }

  /** The store if it exists, without making it: reading an absent store makes nothing. */
  static async openExisting(options: StoreOptions = {}): Promise<ImageStore | null> {
    const root = join(dataDir(options), 'images');
    try {
      if (!(await stat(join(root, 'refs'))).isDirectory()) return null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    return new ImageStore(root, { ...DEFAULT_STORE_LIMITS, ...options.limits });
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs/sha256', hexOf(digest));
  }

  /** The directory the launcher stacks: the layer's root. */
  layerRoot(diffId: string): string {
    return join(this.root, 'layers', hexOf(diffId), 'root');
  }

  private tmpPath(): string {
    return join(this.root, 'tmp', `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async hasBlob(digest: string): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /**
   * Writes a blob from source, verified against digest (and size when known) before it is
   * renamed into place; a mismatch discards it.
   */
  async putBlob(
    digest: string,
    source: Readable,
    opts: { size?: number; maxBytes?: number; onBytes?: (bytes: number) => void } = {},
  ): Promise<void> {
    const target = this.blobPath(digest);
    const tmp = this.tmpPath();
    const cap = Math.min(opts.maxBytes ?? this.limits.maxBlobBytes, opts.size ?? Number.MAX_SAFE_INTEGER);
    const meter = new DigestMeter(cap, opts.onBytes);
    try {
      await pipeline(source, meter, createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
      const actual = `sha256:${meter.hash.digest('hex')}`;
      if (actual !== digest || (opts.size !== undefined && meter.bytes !== opts.size)) {
        throw new MdockerError(
          'INVALID_ARGUMENT',
          `blob ${digest} does not match its digest or size (got ${actual}, ${meter.bytes} bytes): discarded`,
        );
      }
      await rename(tmp, target);
    } catch (err) {
      source.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Stores bytes under their own digest; returns it. */
  async putBlobBytes(bytes: Buffer): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (!(await this.hasBlob(digest))) await this.putBlob(digest, Readable.from([bytes]));
    return digest;
  }

  async readBlob(digest: string, maxBytes = this.limits.maxDocumentBytes): Promise<Buffer> {
    const path = this.blobPath(digest);
    const size = (await stat(path)).size;
    if (size > maxBytes) throw new MdockerError('LIMIT_EXCEEDED', `blob ${digest} is over ${maxBytes} bytes`);
    return readFile(path);
  }

  openBlob(digest: string): Readable {
    return createReadStream(this.blobPath(digest));
  }

  /** Makes sure the blob is here, fetching it from source when it is not. */
  async ensureBlob(descriptor: Descriptor, source: BlobSource, progress?: ProgressListener): Promise<void> {
    if (await this.hasBlob(descriptor.digest)) {
      progress?.({
        digest: descriptor.digest,
        totalBytes: descriptor.size,
        doneBytes: descriptor.size,
        status: 'exists',
      });
      return;
    }
    if (descriptor.size > this.limits.maxBlobBytes) {
      throw new MdockerError('LIMIT_EXCEEDED', `blob ${descriptor.digest} is over ${this.limits.maxBlobBytes} bytes`);
    }
    const stream = await source.open(descriptor);
    await this.putBlob(descriptor.digest, stream, {
      size: descriptor.size,
      onBytes: (bytes) =>
        progress?.({ digest: descriptor.digest, totalBytes: descriptor.size, doneBytes: bytes, status: 'downloading' }),
    });
  }

  async hasLayer(diffId: string): Promise<boolean> {
    try {
      await stat(join(this.root, 'layers', hexOf(diffId), 'layer.json'));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async layerSizeBytes(diffId: string): Promise<number> {
    const meta = JSON.parse(await readFile(join(this.root, 'layers', hexOf(diffId), 'layer.json'), 'utf8')) as {
      sizeBytes: number;
    };
    return meta.sizeBytes;
  }

  /**
   * Unpacks the layer blob (already stored) into layers/<diff id>, unless it is there: into
   * tmp/ first, renamed once whole and its diff id checked.
   */
  async ensureLayer(layer: LayerRecord): Promise<void> {
    if (await this.hasLayer(layer.diffId)) return;
    const compression = layerCompression(layer.mediaType);
    const tmp = this.tmpPath();
    try {
      await mkdir(tmp, { mode: 0o700 });
      // The container's / when the layer has no entry for it: everyone may traverse it.
      await mkdir(join(tmp, 'root'), { mode: 0o755 });
      const result = await unpackLayer(this.openBlob(layer.digest), compression, join(tmp, 'root'), this.limits.unpack);
      if (result.diffId !== layer.diffId) {
        throw new MdockerError(
          'INVALID_ARGUMENT',
          `layer ${layer.digest} unpacks to ${result.diffId}, but the config says ${layer.diffId}: refused`,
        );
      }
      await writeFile(join(tmp, 'layer.json'), JSON.stringify(result) + '\n', { mode: 0o600 });
      try {
        await rename(tmp, join(this.root, 'layers', hexOf(layer.diffId)));
      } catch (err) {
        // Another pull unpacked it meanwhile: theirs stays.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Imports the image whose manifest (a manifest, not an index) has this digest: its
   * manifest, config and layers from source, verified, unpacked, then its record, then
   * its references. Returns the record.
   */
  async importImage(
    manifestDescriptor: Descriptor,
    source: BlobSource,
    references: ImageReference[],
    progress?: ProgressListener,
  ): Promise<ImageRecord> {
    await this.ensureBlob({ ...manifestDescriptor, size: manifestDescriptor.size }, source);
    const manifest: ImageManifest = parseDocument(
      manifestSchema,
      await this.readBlob(manifestDescriptor.digest),
      `manifest ${manifestDescriptor.digest}`,
    );
    if (manifest.config.size > this.limits.maxDocumentBytes) {
      throw new MdockerError('LIMIT_EXCEEDED', `config of ${manifestDescriptor.digest} is too large`);
    }
    await this.ensureBlob(manifest.config, source);
    const config: ImageConfig = parseDocument(
      imageConfigSchema,
      await this.readBlob(manifest.config.digest),
      `config ${manifest.config.digest}`,
    );
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw new MdockerError('INVALID_ARGUMENT', 'the manifest and its config disagree on the number of layers');
    }
    const layers: LayerRecord[] = manifest.layers.map((layer, i) => ({
      digest: layer.digest,
      mediaType: layer.mediaType,
      size: layer.size,
      diffId: diffIds[i]!,
    }));
    for (const layer of layers) layerCompression(layer.mediaType);
    let sizeBytes = 0;
    await eachLimited(layers, LAYER_CONCURRENCY, async (layer) => {
      await this.ensureBlob({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, source, progress);
      if (await this.hasLayer(layer.diffId)) {
        progress?.({ digest: layer.digest, totalBytes: layer.size, doneBytes: layer.size, status: 'done' });
      } else {
        progress?.({ digest: layer.digest, totalBytes: layer.size, doneBytes: layer.size, status: 'unpacking' });
        await this.ensureLayer(layer);
        progress?.({ digest: layer.digest, totalBytes: layer.size, doneBytes: layer.size, status: 'done' });
      }
      // Read first: `sizeBytes += await` would add to the total as it was before the wait,
      // and the layers run concurrently.
      const layerBytes = await this.layerSizeBytes(layer.diffId);
      sizeBytes += layerBytes;
      if (sizeBytes > this.limits.maxImageBytes) {
        throw new MdockerError('LIMIT_EXCEEDED', `image larger than ${this.limits.maxImageBytes} bytes unpacked`);
      }
    });
    const record: ImageRecord = {
      id: manifest.config.digest,
      manifestDigest: manifestDescriptor.digest,
      manifestMediaType: manifest.mediaType ?? manifestDescriptor.mediaType,
      manifestSize: manifestDescriptor.size,
      configDigest: manifest.config.digest,
      layers,
      created: config.created ?? null,
      sizeBytes,
      loadedAt: new Date().toISOString(),
    };
    const previous = await this.getImage(record.id);
    await this.writeAtomic(join(this.root, 'images', `${hexOf(record.id)}.json`), JSON.stringify(record) + '\n');
    // The same image from another source (a registry's gzip blobs, an archive's plain
    // tars): what only the previous record named goes.
    if (previous !== null && previous.manifestDigest !== record.manifestDigest) await this.collect(previous);
    for (const reference of references) await this.tag(reference, record.id);
    return record;
  }

  private async writeAtomic(path: string, content: string): Promise<void> {
    const tmp = this.tmpPath();
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
  }

  private refPath(reference: string): string {
    return join(this.root, 'refs', `${createHash('sha256').update(reference).digest('hex')}.json`);
  }

  /** Points the reference (a tag; a digest reference is not kept) at an image. */
  async tag(reference: ImageReference, id: string): Promise<void> {
    if (reference.tag === null) return;
    const name = formatReference({ ...reference, digest: null });
    const record: RefRecord = { reference: name, id };
    await this.writeAtomic(this.refPath(name), JSON.stringify(record) + '\n');
  }

  private async readJsonDir<T>(dir: string): Promise<T[]> {
    const out: T[] = [];
    for (const name of await readdir(join(this.root, dir))) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(await readFile(join(this.root, dir, name), 'utf8')) as T);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return out;
  }

  async list(): Promise<ImageSummary[]> {
    const images = await this.readJsonDir<ImageRecord>('images');
    const refs = await this.readJsonDir<RefRecord>('refs');
    return images
      .map((image) => ({
        ...image,
        references: refs
          .filter((ref) => ref.id === image.id)
          .map((ref) => ref.reference)
          .sort(),
      }))
      .sort((a, b) => (b.loadedAt < a.loadedAt ? -1 : 1));
  }

  async getImage(id: string): Promise<ImageRecord | null> {
    try {
      return JSON.parse(await readFile(join(this.root, 'images', `${hexOf(id)}.json`), 'utf8')) as ImageRecord;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  /**
   * The image a user names: a reference (`alpine`, `host:5000/app:1`, `app@sha256:...`),
   * an image id (`sha256:<hex>`) or an id's prefix of at least 4 hex digits. Null if none.
   */
  async find(name: string): Promise<ImageRecord | null> {
    const idMatch = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(name);
    if (idMatch) {
      const hex = idMatch[1]!;
      if (hex.length === 64) {
        const image = await this.getImage(`sha256:${hex}`);
        if (image) return image;
      } else {
        const matches = (await readdir(join(this.root, 'images'))).filter(
          (file) => file.endsWith('.json') && file.startsWith(hex),
        );
        if (matches.length > 1) throw new MdockerError('CONFLICT', `image id prefix ${hex} is ambiguous`);
        if (matches.length === 1) return this.getImage(`sha256:${matches[0]!.slice(0, 64)}`);
      }
      if (name.startsWith('sha256:')) return null;
    }
    const reference = parseReference(name);
    if (reference.digest !== null) {
      const images = await this.readJsonDir<ImageRecord>('images');
      return images.find((image) => image.manifestDigest === reference.digest || image.id === reference.digest) ?? null;
    }
    try {
      const ref = JSON.parse(await readFile(this.refPath(formatReference(reference)), 'utf8')) as RefRecord;
      return this.getImage(ref.id);
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async readConfig(image: ImageRecord): Promise<ImageConfig> {
    return parseDocument(imageConfigSchema, await this.readBlob(image.configDigest), `config ${image.configDigest}`);
  }

  /**
   * The image's layer roots, bottom first (the manifest's order), each once: overlayfs
   * refuses a lower twice (ELOOP), and images repeat layers (the empty one, often). Only the
   * topmost occurrence is kept, which changes nothing: whatever a layer sets, it sets again
   * there, over all that lies between.
   */
  layerRoots(image: ImageRecord): string[] {
    const topmost = new Map<string, number>();
    image.layers.forEach((layer, i) => topmost.set(layer.diffId, i));
    return image.layers
      .filter((layer, i) => topmost.get(layer.diffId) === i)
      .map((layer) => this.layerRoot(layer.diffId));
  }

  /**
   * Removes a reference, or an image: a reference of an image that has others only loses
   * the tag (as docker rmi); the last reference, or an id, removes the image and then
   * whatever of its blobs and layers no other image has. inUse says when the image may not
   * go. Returns what was untagged and deleted.
   */
  async remove(
    name: string,
    inUse: (image: ImageRecord) => string | null,
    force = false,
  ): Promise<{ untagged: string[]; deleted: string | null }> {
    const image = await this.find(name);
    if (!image) throw new MdockerError('NOT_FOUND', `no such image: ${name}`);
    const refs = (await this.readJsonDir<RefRecord>('refs')).filter((ref) => ref.id === image.id);
    const reference = referenceOrNull(name);
    const named = reference !== null && refs.some((ref) => ref.reference === reference);
    if (named && refs.length > 1) {
      await rm(this.refPath(reference), { force: true });
      return { untagged: [reference], deleted: null };
    }
    if (!named && refs.length > 1 && !force) {
      throw new MdockerError(
        'CONFLICT',
        `image ${image.id.slice(7, 19)} is tagged ${refs.length} times (${refs.map((ref) => ref.reference).join(', ')}): remove the tags, or use -f`,
      );
    }
    const blocker = inUse(image);
    if (blocker !== null) {
      throw new MdockerError('CONFLICT', `image ${familiarOrId(refs, image)} is in use by container ${blocker}`, {
        container: blocker,
      });
    }
    for (const ref of refs) await rm(this.refPath(ref.reference), { force: true });
    await rm(join(this.root, 'images', `${hexOf(image.id)}.json`), { force: true });
    await this.collect(image);
    return { untagged: refs.map((ref) => ref.reference), deleted: image.id };
  }

  /** Deletes the blobs and layers of a removed image that no remaining image uses. */
  private async collect(removed: ImageRecord): Promise<void> {
    const others = await this.readJsonDir<ImageRecord>('images');
    const blobs = new Set<string>();
    const diffIds = new Set<string>();
    for (const image of others) {
      blobs.add(image.manifestDigest);
      blobs.add(image.configDigest);
      for (const layer of image.layers) {
        blobs.add(layer.digest);
        diffIds.add(layer.diffId);
      }
    }
    const candidates = [removed.manifestDigest, removed.configDigest, ...removed.layers.map((layer) => layer.digest)];
    for (const digest of candidates) if (!blobs.has(digest)) await rm(this.blobPath(digest), { force: true });
    for (const layer of removed.layers) {
      if (diffIds.has(layer.diffId)) continue;
      // Out of layers/ in one rename, so no half-deleted layer is ever found there.
      const doomed = this.tmpPath();
      try {
        await rename(join(this.root, 'layers', hexOf(layer.diffId)), doomed);
      } catch (err) {
        if (isMissing(err)) continue;
        throw err;
      }
      await rm(doomed, { recursive: true, force: true });
    }
  }

  /** Removes what killed imports left in tmp/ (a day old: a live import may be using the rest). */
  async cleanTmp(olderThanMs = 24 * 3_600_000): Promise<void> {
    const dir = join(this.root, 'tmp');
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      try {
        if (Date.now() - (await stat(path)).mtimeMs > olderThanMs) await rm(path, { recursive: true, force: true });
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
  }
}

/** The normalized tag reference a name is, if it is one. */
function referenceOrNull(name: string): string | null {
  try {
    const reference = parseReference(name);
    return reference.digest === null ? formatReference(reference) : null;
  } catch {
    return null;
  }
}

function familiarOrId(refs: RefRecord[], image: ImageRecord): string {
  const first = refs[0];
  if (!first) return image.id.slice('sha256:'.length, 'sha256:'.length + 12);
  const parsed = parseReference(first.reference);
  return `${familiarName(parsed)}:${parsed.tag ?? ''}`;
}
