/**
 * Commit: a directory tree (a running container's upper layer, or a built-in image's tree)
 * written as a gzip layer tar and stored as a new image on top of a base, as `docker commit`.
 *
 * The upper layer is the student's: every entry is read from a directory fd by one name
 * (the addon's listLayerDir and openInRoot, never a path, never a symlink followed), so
 * nothing that is swapped meanwhile reaches past it. Overlayfs's marks become the layer
 * format's: a whiteout (character device 0/0) a `.wh.NAME` entry, an opaque directory
 * (overlay.opaque "y") a `.wh..wh..opq` entry; overlay's own xattrs stay behind. Owners
 * are mapped back from the host's ids to the container's through its uid_map and gid_map.
 * The layer is then unpacked by the store's own confined unpacker, like any pulled one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, read } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import { MdockerError } from '../errors.js';
import { layerFileCalls } from '../native.js';
import type { NativeLayerEntry } from '../native-addon.js';
import { MEDIA_TYPES } from './oci.js';
import type { ImageReference } from './reference.js';
import type { ImageRecord, ImageStore, LayerRecord } from './store.js';

const readAsync = promisify(read);

const CHUNK_BYTES = 64 * 1024;
/** A walk goes this deep at most (one fd open per level). */
const MAX_DEPTH = 256;
/** Entries of one layer at most, as the unpacker's own cap. */
const MAX_ENTRIES = 1_000_000;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** overlayfs's bookkeeping, in trusted.* (host user namespace) or user.* (userxattr). */
const OVERLAY_XATTR = /^(?:trusted|user)\.overlay\./;

/**
 * The files the launcher binds its own content on (mounts.c, setup_etc): their copies in
 * the upper layer are the image's, copied up when the launcher opened them to mount on,
 * or empty files it made; the container's writes go to the bound files, never there. Left
 * out, as Docker leaves its init layer out of a commit.
 */
export const UPPER_MOUNT_POINTS: ReadonlySet<string> = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);

/** host id → the container's: one line of a uid_map or gid_map. */
export interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

/** The ranges of a /proc/PID/uid_map (or gid_map) text. */
export function parseIdMap(text: string): IdRange[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((fields) => fields.length === 3 && fields.every((n) => Number.isSafeInteger(n) && n >= 0))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

/** The container's id for a host id; 65534 (nobody, the kernel's overflow id) when unmapped. */
export function containerId(ranges: readonly IdRange[], hostId: number): number {
  for (const range of ranges) {
    if (hostId >= range.outside && hostId - range.outside < range.count) return range.inside + hostId - range.outside;
  }
  return 65534;
}

/** What one tree is committed as. */
export interface LayerTree {
  /** The tree's root directory, open for reading (the caller's to close). */
  dirFd: number;
  uidMap: readonly IdRange[];
  gidMap: readonly IdRange[];
  /** An overlay upper layer (whiteouts and opaque marks mean deletions), else a plain tree. */
  overlay: boolean;
  /** Non-directory paths left out (a built-in image's marker file; see UPPER_MOUNT_POINTS). */
  skipPaths?: ReadonlySet<string>;
}

type LayerEntry = NativeLayerEntry;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The xattrs a tar keeps, as PAX SCHILY.xattr records: overlay's own are dropped, and so
 * are values that are not UTF-8 text (security.capability's binary), which tar-stream's
 * PAX records, strings, cannot carry.
 */
function paxXattrs(xattrs: Record<string, Buffer>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(xattrs)) {
    if (OVERLAY_XATTR.test(name)) continue;
    try {
      const text = utf8.decode(value);
      if (!text.includes('\n') && !text.includes('\0')) out[`SCHILY.xattr.${name}`] = text;
    } catch {
      // binary: left out
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function isOpaque(entry: LayerEntry): boolean {
  const mark = entry.xattrs['user.overlay.opaque'] ?? entry.xattrs['trusted.overlay.opaque'];
  return mark !== undefined && mark.toString('latin1') === 'y';
}

function refuse(path: string, why: string): MdockerError {
  return new MdockerError('UNSUPPORTED', `cannot commit ${JSON.stringify(path.slice(0, 200))}: ${why}`);
}

/**
 * One name in dirFd opened (openInRoot, never through a symlink), or null when it went
 * since the listing (the container is live): removed (ENOENT), or replaced by a symlink
 * (ELOOP) or by something that is not a directory (ENOTDIR).
 */
function openEntry(dirFd: number, name: string): ReturnType<ReturnType<typeof layerFileCalls>['openInRoot']> | null {
  try {
    return layerFileCalls().openInRoot(dirFd, name, false);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Writes entries into the pack; counts them; remembers hardlinked inodes. */
class TreeWriter {
  entries = 0;
  private readonly links = new Map<number, string>();

  constructor(
    private readonly tar: Pack,
    private readonly tree: LayerTree,
  ) {}

  private add(header: Partial<Header> & { name: string }, content?: Buffer): Promise<void> {
    if (++this.entries > MAX_ENTRIES) {
      throw new MdockerError('LIMIT_EXCEEDED', `more than ${MAX_ENTRIES} entries to commit`);
    }
    return new Promise((resolve, reject) => {
      this.tar.entry(header, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }

  private base(entry: LayerEntry, path: string): Partial<Header> & { name: string } {
    const pax = paxXattrs(entry.xattrs);
    return {
      name: path,
      mode: entry.mode,
      uid: containerId(this.tree.uidMap, entry.uid),
      gid: containerId(this.tree.gidMap, entry.gid),
      mtime: new Date(entry.mtimeMs),
      ...(pax === undefined ? {} : { pax }),
    };
  }

  async walk(dirFd: number, prefix: string, depth: number): Promise<void> {
    if (depth > MAX_DEPTH) throw refuse(prefix, `deeper than ${MAX_DEPTH} directories`);
    const listing = layerFileCalls().listLayerDir(dirFd, Math.min(MAX_ENTRIES, MAX_ENTRIES - this.entries + 1));
    if (listing.truncated) throw new MdockerError('LIMIT_EXCEEDED', `more than ${MAX_ENTRIES} entries to commit`);
    const entries = listing.entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = `${prefix}${entry.name}`;
      if (entry.kind !== 'dir' && this.tree.skipPaths?.has(path)) continue;
      if (this.tree.overlay) {
        if (entry.kind === 'char' && entry.rdevMajor === 0 && entry.rdevMinor === 0) {
          await this.add({
            ...this.base(entry, path),
            name: `${prefix}${WHITEOUT_PREFIX}${entry.name}`,
            type: 'file',
            size: 0,
          });
          continue;
        }
        // redirect_dir and metacopy leave an entry's content in a lower layer, which a
        // layer of its own cannot say. The launcher's overlays make neither (userxattr
        // forbids both; the host's defaults are off): refused, should one appear.
        if (Object.keys(entry.xattrs).some((name) => /\.overlay\.(?:redirect|metacopy)$/.test(name))) {
          throw refuse(path, 'overlayfs kept it as a redirect or a metadata-only copy');
        }
      }
      // In a layer a .wh. name means a deletion: a file of the student's so named would
      // delete its namesake in the image instead of being kept.
      if (entry.name.startsWith(WHITEOUT_PREFIX))
        throw refuse(path, 'names starting with .wh. mean deletions in a layer');
      await this.entry(dirFd, entry, path, depth);
    }
  }

  private async entry(dirFd: number, entry: LayerEntry, path: string, depth: number): Promise<void> {
    switch (entry.kind) {
      case 'dir': {
        await this.add({ ...this.base(entry, `${path}/`), type: 'directory' });
        if (this.tree.overlay && isOpaque(entry)) {
          await this.add({ ...this.base(entry, `${path}/${OPAQUE_MARKER}`), type: 'file', mode: 0o644, size: 0 });
        }
        const opened = openEntry(dirFd, entry.name);
        if (opened === null || opened.type !== 'dir') {
          if (opened !== null && opened.fd >= 0) closeSync(opened.fd);
          return; // replaced meanwhile: what is there now is not what was listed
        }
        try {
          await this.walk(opened.fd, `${path}/`, depth + 1);
        } finally {
          closeSync(opened.fd);
        }
        return;
      }
      case 'file':
        return this.file(dirFd, entry, path);
      case 'symlink':
        // A symlink is data: its target is written as it reads, never followed.
        await this.add({ ...this.base(entry, path), type: 'symlink', linkname: entry.target ?? '' });
        return;
      case 'fifo':
        await this.add({ ...this.base(entry, path), type: 'fifo' });
        return;
      case 'char':
      case 'block':
        await this.add({
          ...this.base(entry, path),
          type: entry.kind === 'char' ? 'character-device' : 'block-device',
          devmajor: entry.rdevMajor,
          devminor: entry.rdevMinor,
        });
        return;
      default:
        // A socket lives only as long as its listener: a tar has no type for it (Docker's
        // commit leaves them out too).
        return;
    }
  }

  private async file(dirFd: number, entry: LayerEntry, path: string): Promise<void> {
    if (entry.nlink > 1) {
      const first = this.links.get(entry.ino);
      if (first !== undefined) {
        await this.add({ ...this.base(entry, path), type: 'link', linkname: first });
        return;
      }
      this.links.set(entry.ino, path);
    }
    // Opened by name, O_PATH then reopened only as the regular file it is (openInRoot): a
    // FIFO or device swapped in meanwhile is never opened, and the size is the open file's.
    const opened = openEntry(dirFd, entry.name);
    if (opened === null || opened.type !== 'file' || opened.fd < 0) {
      if (opened !== null && opened.fd >= 0) closeSync(opened.fd);
      return;
    }
    try {
      const size = opened.size;
      if (++this.entries > MAX_ENTRIES) throw new MdockerError('LIMIT_EXCEEDED', `more than ${MAX_ENTRIES} entries`);
      const fd = opened.fd;
      const tar = this.tar;
      await new Promise<void>((resolve, reject) => {
        const sink = tar.entry({ ...this.base(entry, path), type: 'file', size }, (err) =>
          err ? reject(err) : resolve(),
        );
        // Its failure reaches us through the callback.
        sink.on('error', () => undefined);
        void (async () => {
          try {
            let offset = 0;
            const buffer = Buffer.alloc(CHUNK_BYTES);
            while (offset < size) {
              const want = Math.min(CHUNK_BYTES, size - offset);
              const { bytesRead } = await readAsync(fd, buffer, 0, want, offset);
              // The file shrank while read (the container is live): the header's size is
              // kept, the rest zeros, as GNU tar does.
              const chunk = bytesRead === 0 ? Buffer.alloc(want) : Buffer.from(buffer.subarray(0, bytesRead));
              offset += chunk.length;
              if (!sink.write(chunk)) await drained(sink, tar);
            }
            sink.end(undefined);
          } catch (err) {
            sink.destroy(err as Error);
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        })();
      });
    } finally {
      closeSync(opened.fd);
    }
  }
}

/** Resolves once the entry is writable again; rejects if it or the whole tar closes first. */
function drained(entry: NodeJS.EventEmitter, pack: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      entry.off('drain', onDrain);
      entry.off('close', onClose);
      pack.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new MdockerError('INTERNAL', 'the layer tar closed'));
    entry.on('drain', onDrain);
    entry.on('close', onClose);
    pack.on('close', onClose);
  });
}

/** Counts and hashes the bytes passing through. */
class Sha256Meter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** The tree as a gzip layer at path: its blob digest and size, and its diff id. */
async function writeLayerBlob(
  tree: LayerTree,
  path: string,
): Promise<{ digest: string; size: number; diffId: string }> {
  const tar = tarPack();
  const writer = new TreeWriter(tar, tree);
  const plain = new Sha256Meter();
  const compressed = new Sha256Meter();
  const written = pipeline(
    tar as unknown as Readable,
    plain,
    createGzip(),
    compressed,
    createWriteStream(path, { mode: 0o600, flags: 'wx' }),
  );
  try {
    await writer.walk(tree.dirFd, '', 0);
    tar.finalize();
  } catch (err) {
    tar.destroy(err as Error);
    await written.catch(() => undefined);
    throw err;
  }
  await written;
  return { digest: compressed.digest(), size: compressed.bytes, diffId: plain.digest() };
}

/** One layer to commit: a tree and its history entry. */
export interface CommitLayer {
  tree: LayerTree;
  /** The history entry's created_by. */
  createdBy: string;
  /** Its comment (docker commit -m). */
  comment?: string;
}

/**
 * Stores the trees as new layers, in order, on top of base (null: they are the whole
 * image) with base's config (baseConfig: its raw JSON, kept whole), tagged reference.
 * Returns the new image's record.
 */
export async function commitTrees(
  store: ImageStore,
  layers: readonly CommitLayer[],
  base: ImageRecord | null,
  baseConfig: Record<string, unknown>,
  reference: ImageReference,
): Promise<ImageRecord> {
  const tmp = join(store.root, 'tmp', `commit-${process.pid}-${randomBytes(8).toString('hex')}`);
  const created = new Date().toISOString();
  const records: LayerRecord[] = [];
  try {
    for (const { tree } of layers) {
      await rm(tmp, { force: true });
      const blob = await writeLayerBlob(tree, tmp);
      if (!(await store.hasBlob(blob.digest))) {
        await store.putBlob(blob.digest, createReadStream(tmp), { size: blob.size });
      }
      const layer: LayerRecord = {
        digest: blob.digest,
        mediaType: MEDIA_TYPES.ociLayerGzip,
        size: blob.size,
        diffId: blob.diffId,
      };
      await store.ensureLayer(layer);
      records.push(layer);
    }
  } finally {
    await rm(tmp, { force: true });
  }
  const rootfs = (baseConfig['rootfs'] ?? {}) as { diff_ids?: string[] };
  const history = Array.isArray(baseConfig['history']) ? (baseConfig['history'] as unknown[]) : [];
  const config = {
    ...baseConfig,
    created,
    rootfs: { type: 'layers', diff_ids: [...(rootfs.diff_ids ?? []), ...records.map((layer) => layer.diffId)] },
    history: [
      ...history,
      ...layers.map((layer) => ({
        created,
        created_by: layer.createdBy,
        ...(layer.comment === undefined || layer.comment === '' ? {} : { comment: layer.comment }),
      })),
    ],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await store.putBlobBytes(configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: configBytes.length },
    layers: [...(base?.layers ?? []), ...records].map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
    })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await store.putBlobBytes(manifestBytes);
  // Every blob is in the store now: the import only checks and records them, and tags last.
  const nothingToFetch = {
    open(): Promise<Readable> {
      return Promise.reject(new MdockerError('INTERNAL', 'a committed image has every blob stored'));
    },
  };
  return store.importImage(
    { mediaType: MEDIA_TYPES.ociManifest, digest: manifestDigest, size: manifestBytes.length },
    nothingToFetch,
    [reference],
  );
}
