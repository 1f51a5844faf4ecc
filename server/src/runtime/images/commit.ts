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
import { MdockerError } from '../errors.js';
import { layerFileCalls } from '../native.js';
import type { NativeLayerEntry } from '../native-addon.js';
import { MEDIA_TYPES } from './oci.js';
import { TarWriter, type TarHeader } from './tar-writer.js';
import type { ImageReference } from './reference.js';
import type { ImageRecord, ImageStore, LayerRecord } from './store.js';

const readAsync = promisify(read);

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

/** The container's id for a host id, or null when no range maps it. */
export function mappedId(ranges: readonly IdRange[], hostId: number): number | null {
  for (const range of ranges) {
    if (hostId >= range.outside && hostId - range.outside < range.count) return range.inside + hostId - range.outside;
  }
  return null;
}

/** The container's id for a host id; 65534 (nobody, the kernel's overflow id) when unmapped. */
export function containerId(ranges: readonly IdRange[], hostId: number): number {
  return mappedId(ranges, hostId) ?? 65534;
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

const CAPABILITY_XATTR = 'security.capability';
const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;

/**
 * A file capability as a layer keeps it, or null to drop it. The kernel shows host root a
 * v3 capability with the host id of the namespace's root (rootid); in the layer, seen
 * through the idmapped mount, rootid must be the container's: 0 becomes the v2 form
 * Docker's images use, another mapped id stays v3 with that id, an unmapped one is dropped.
 */
export function layerCapability(value: Buffer, uidMap: readonly IdRange[]): Buffer | null {
  if (value.length < 4) return null;
  const magic = value.readUInt32LE(0);
  const revision = (magic & VFS_CAP_REVISION_MASK) >>> 0;
  if (revision === VFS_CAP_REVISION_2 && value.length === 20) return value;
  if (revision !== VFS_CAP_REVISION_3 || value.length !== 24) return null;
  const rootid = value.readUInt32LE(20);
  const inside = mappedId(uidMap, rootid);
  if (inside === null) return null;
  if (inside === 0) {
    const v2 = Buffer.from(value.subarray(0, 20));
    v2.writeUInt32LE(((magic & ~VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2) >>> 0, 0);
    return v2;
  }
  const v3 = Buffer.from(value);
  v3.writeUInt32LE(inside, 20);
  return v3;
}

/** The xattrs a layer keeps: all but overlay's own, a file capability made the container's. */
function layerXattrs(xattrs: Record<string, Buffer>, uidMap: readonly IdRange[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [name, value] of Object.entries(xattrs)) {
    if (OVERLAY_XATTR.test(name)) continue;
    if (name === CAPABILITY_XATTR) {
      const capability = layerCapability(value, uidMap);
      if (capability !== null) out.set(name, capability);
      continue;
    }
    out.set(name, value);
  }
  return out;
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

/** Writes entries into the tar; counts them; remembers hardlinked inodes. */
class TreeWriter {
  entries = 0;
  private readonly links = new Map<number, string>();

  constructor(
    private readonly tar: TarWriter,
    private readonly tree: LayerTree,
  ) {}

  private count(): void {
    if (++this.entries > MAX_ENTRIES) {
      throw new MdockerError('LIMIT_EXCEEDED', `more than ${MAX_ENTRIES} entries to commit`);
    }
  }

  private add(header: TarHeader): Promise<void> {
    this.count();
    return this.tar.entry(header);
  }

  private base(entry: LayerEntry, path: string, type: TarHeader['type']): TarHeader {
    return {
      name: path,
      type,
      mode: entry.mode,
      uid: containerId(this.tree.uidMap, entry.uid),
      gid: containerId(this.tree.gidMap, entry.gid),
      size: 0,
      mtimeMs: entry.mtimeMs,
      xattrs: layerXattrs(entry.xattrs, this.tree.uidMap),
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
            ...this.base(entry, `${prefix}${WHITEOUT_PREFIX}${entry.name}`, 'file'),
            xattrs: new Map(),
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
      if (entry.name.startsWith(WHITEOUT_PREFIX)) {
        throw refuse(path, 'names starting with .wh. mean deletions in a layer');
      }
      await this.entry(dirFd, entry, path, depth);
    }
  }

  private async entry(dirFd: number, entry: LayerEntry, path: string, depth: number): Promise<void> {
    switch (entry.kind) {
      case 'dir': {
        await this.add(this.base(entry, `${path}/`, 'directory'));
        if (this.tree.overlay && isOpaque(entry)) {
          await this.add({ ...this.base(entry, `${path}/${OPAQUE_MARKER}`, 'file'), mode: 0o644, xattrs: new Map() });
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
        await this.add({ ...this.base(entry, path, 'symlink'), linkname: entry.target ?? '' });
        return;
      case 'fifo':
        await this.add(this.base(entry, path, 'fifo'));
        return;
      case 'char':
      case 'block':
        await this.add({
          ...this.base(entry, path, entry.kind === 'char' ? 'character-device' : 'block-device'),
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
        await this.add({ ...this.base(entry, path, 'link'), linkname: first });
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
    const fd = opened.fd;
    try {
      this.count();
      // A file that shrinks while read (the container is live) keeps the header's size,
      // the rest zeros, as GNU tar does (TarWriter.entry).
      await this.tar.entry({ ...this.base(entry, path, 'file'), size: opened.size }, async (buffer, offset) => {
        const { bytesRead } = await readAsync(fd, buffer, 0, buffer.length, offset);
        return bytesRead;
      });
    } finally {
      closeSync(fd);
    }
  }
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
  const tar = new TarWriter();
  const writer = new TreeWriter(tar, tree);
  const plain = new Sha256Meter();
  const compressed = new Sha256Meter();
  const written = pipeline(
    tar.output,
    plain,
    createGzip(),
    compressed,
    createWriteStream(path, { mode: 0o600, flags: 'wx' }),
  );
  try {
    await writer.walk(tree.dirFd, '', 0);
    await tar.finish();
  } catch (err) {
    tar.output.destroy(err as Error);
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
