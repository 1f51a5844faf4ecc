/**
 * Unpacks one layer's tar into a directory of its own, as an overlay lower: whiteouts
 * become overlayfs whiteouts (character devices 0/0) and opaque markers an opaque xattr,
 * as containerd's overlay snapshotter makes them; ownership, modes and times are kept.
 *
 * Hostile layers are the threat (a registry or an archive is anyone's). The tar is parsed
 * by tar-stream; the filesystem writes are ours, confined by these rules:
 * - names are made relative (a leading / is dropped, as tar does) and any `..` component
 *   refuses the layer, as do components over NAME_MAX and paths over PATH_MAX;
 * - every parent directory of an entry must be a real directory this unpack made: an entry
 *   below a symlink (a write through it) or below a file refuses the layer;
 * - the last component is never followed: files are created O_CREAT|O_EXCL|O_NOFOLLOW,
 *   ownership set with lchown, and what was there is removed first;
 * - a hardlink's target must be a non-directory inside this layer, found the same way;
 * - device nodes and FIFOs are not made (the mount is nodev anyway), and counted;
 * - of the extended attributes a pax header gives (SCHILY.xattr.*), only a regular file's
 *   security.capability of a valid form is written; the others are counted and dropped:
 *   trusted.overlay.* and user.overlay.* would steer the container's overlay (opaque
 *   directories, redirects, metacopy), security.selinux and the like are the host's;
 * - the decompressed stream (headers and data) is capped, and so is the number of entries.
 * These checks then use are not racy because the directory is new, private to the store
 * (0700, root) and written by this process alone: nothing can swap a checked directory for
 * a symlink between the check and the write. openat2 per entry through the addon would
 * need one crossing per syscall for the same guarantee here.
 */
import { createHash } from 'node:crypto';
import {
  constants as fsConstants,
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Extract, type Header } from 'tar-stream';
import { MdockerError } from '../errors.js';
import { overlayOpaque, overlayWhiteout, setFileCapability } from '../native.js';
import { decompressor } from './decompress.js';
import type { LayerCompression } from './oci.js';

const NAME_MAX_BYTES = 255;
const PATH_MAX_BYTES = 4096;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

export interface UnpackLimits {
  /** The decompressed tar, headers included: a decompression bomb stops here. */
  maxTarBytes: number;
  maxEntries: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxTarBytes: 8 * 1024 ** 3, maxEntries: 1_000_000 };

const XATTR_KEY_PREFIX = 'SCHILY.xattr.';
const CAPABILITY_XATTR = 'security.capability';
/** vfs_cap_data: magic_etc (revision in the top byte, bit 0 "effective") then its sets. */
const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
const VFS_CAP_SIZES = new Map([
  [0x02000000, 20],
  [0x03000000, 24],
]);

/**
 * The SCHILY.xattr.* records of a pax header with their values' raw bytes (a file
 * capability is binary; tar-stream decodes pax values as UTF-8, which mangles bytes over
 * 0x7f). Records are "LENGTH KEY=VALUE\n", LENGTH counting the whole record; a malformed
 * one ends the parse, as it ends tar-stream's.
 */
export function paxXattrs(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space === -1 || space - at > 20) break;
    const length = Number(buf.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > buf.length) break;
    const record = buf.subarray(space + 1, at + length);
    if (record[record.length - 1] !== 0x0a) break;
    const equals = record.indexOf(0x3d);
    if (equals !== -1) {
      const key = record.subarray(0, equals).toString('utf8');
      if (key.startsWith(XATTR_KEY_PREFIX)) {
        out.set(key.slice(XATTR_KEY_PREFIX.length), Buffer.from(record.subarray(equals + 1, record.length - 1)));
      }
    }
    at += length;
  }
  return out;
}

/** A security.capability value the kernel takes: v2 (20 bytes) or v3 (24, with a rootid). */
export function isFileCapability(value: Buffer): boolean {
  if (value.length < 4) return false;
  const magic = value.readUInt32LE(0);
  const size = VFS_CAP_SIZES.get((magic & VFS_CAP_REVISION_MASK) >>> 0);
  return size === value.length && (magic & ~(VFS_CAP_REVISION_MASK | VFS_CAP_FLAGS_EFFECTIVE)) === 0;
}

const RAW_XATTRS = Symbol('rawXattrs');
type HeaderWithXattrs = Header & { [RAW_XATTRS]?: Map<string, Buffer> };
interface ExtractInternals {
  /** While a long header's data is decoded: that header (type 'pax-header' among others). */
  _header: (Omit<HeaderWithXattrs, 'type'> & { type?: string }) | null;
  _decodeLongHeader(buf: Buffer): void;
  _applyLongHeaders(): void;
}

/**
 * Gives each header of this extract the raw xattrs of its pax header. tar-stream (pinned
 * by the lockfile) decodes a pax header in _decodeLongHeader and hands it to the next
 * entry's header in _applyLongHeaders; both are wrapped on this one instance. If a
 * release renames them this throws, and every unpack with it (the tests see it at once).
 */
function keepRawXattrs(tar: Extract): void {
  const internals = tar as unknown as ExtractInternals;
  const decode = internals._decodeLongHeader;
  const apply = internals._applyLongHeaders;
  if (typeof decode !== 'function' || typeof apply !== 'function') {
    throw new MdockerError('RUNTIME', 'tar-stream changed: cannot read the xattrs of pax headers');
  }
  let pending: Map<string, Buffer> | null = null;
  internals._decodeLongHeader = function (this: ExtractInternals, buf: Buffer) {
    if (this._header?.type === 'pax-header') pending = paxXattrs(buf);
    decode.call(this, buf);
  };
  internals._applyLongHeaders = function (this: ExtractInternals) {
    apply.call(this);
    if (pending !== null && this._header !== null) this._header[RAW_XATTRS] = pending;
    pending = null;
  };
}

export interface UnpackResult {
  /** sha256 of the decompressed tar: the layer's diff id. */
  diffId: string;
  /** Bytes of regular files' data. */
  sizeBytes: number;
  entries: number;
  /** Device nodes and FIFOs not made. */
  skipped: number;
  /** Files given a file capability (security.capability). */
  capabilities: number;
  /** Extended attributes not written (every other name, or a malformed capability). */
  xattrsSkipped: number;
}

function refuse(message: string): MdockerError {
  return new MdockerError('INVALID_ARGUMENT', `layer refused: ${message}`);
}

/** The entry's path as components below the layer root; [] is the root itself. */
export function entryComponents(name: string): string[] {
  if (name.includes('\0')) throw refuse('a name with NUL');
  if (Buffer.byteLength(name) > PATH_MAX_BYTES) throw refuse(`a path over ${PATH_MAX_BYTES} bytes`);
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  for (const part of parts) {
    if (part === '..') throw refuse(`${JSON.stringify(name.slice(0, 200))} climbs out with ..`);
    if (Buffer.byteLength(part) > NAME_MAX_BYTES) throw refuse(`a name over ${NAME_MAX_BYTES} bytes`);
  }
  return parts;
}

/** Counts and hashes the decompressed tar, and stops it at the cap. */
class TarMeter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly maxBytes: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(refuse(`more than ${this.maxBytes} bytes once decompressed`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/** The layer directory as this unpack built it. */
class LayerWriter {
  /** Relative paths ('' the root) known to be real directories made by us. */
  private readonly dirs = new Set<string>(['']);
  private readonly dirTimes: Array<{ path: string; mtime: Date }> = [];
  /** Whiteouts made in this layer: a directory later put in one's place is made opaque. */
  private readonly whiteouts = new Set<string>();
  sizeBytes = 0;
  entries = 0;
  skipped = 0;
  capabilities = 0;
  xattrsSkipped = 0;

  constructor(
    private readonly root: string,
    private readonly limits: UnpackLimits,
  ) {}

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes every parent of parts a real directory (creating missing ones) and returns its relative path. */
  private async parentOf(parts: string[]): Promise<string> {
    let rel = '';
    for (const part of parts.slice(0, -1)) {
      rel = rel === '' ? part : `${rel}/${part}`;
      if (this.dirs.has(rel)) continue;
      let stats;
      try {
        stats = lstatSync(this.abs(rel));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(this.abs(rel), 0o755);
        this.dirs.add(rel);
        continue;
      }
      // Only a directory of ours can be in dirs; anything else here is not one.
      throw refuse(
        `${JSON.stringify(rel.slice(0, 200))} is ${stats.isSymbolicLink() ? 'a symlink' : 'not a directory'}: nothing may be written through it`,
      );
    }
    return rel;
  }

  /** Removes whatever the layer already has at rel (a later entry replaces it). */
  private async clear(rel: string): Promise<void> {
    const path = this.abs(rel);
    if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) rmSync(path, { recursive: true, force: true });
    if (this.dirs.delete(rel)) {
      for (const dir of this.dirs) if (dir.startsWith(`${rel}/`)) this.dirs.delete(dir);
    }
  }

  async entry(header: Header, stream: AsyncIterable<unknown>): Promise<void> {
    if (++this.entries > this.limits.maxEntries) throw refuse(`more than ${this.limits.maxEntries} entries`);
    const parts = entryComponents(header.name);
    const base = parts[parts.length - 1];
    if (base !== undefined && base.startsWith(WHITEOUT_PREFIX)) {
      await this.whiteout(parts, base);
      return;
    }
    const rel = parts.join('/');
    const uid = header.uid ?? 0;
    const gid = header.gid ?? 0;
    const mode = (header.mode ?? 0o644) & 0o7777;
    const mtime = header.mtime ?? new Date(0);
    const isFile = header.type === 'file' || header.type === 'contiguous-file';
    let capability: Buffer | null = null;
    for (const [name, value] of (header as HeaderWithXattrs)[RAW_XATTRS] ?? []) {
      if (isFile && name === CAPABILITY_XATTR && isFileCapability(value)) capability = value;
      else this.xattrsSkipped++;
    }
    if (parts.length === 0) {
      if (header.type === 'directory') await this.setDirAttrs('', uid, gid, mode, mtime);
      return;
    }
    await this.parentOf(parts);
    const path = this.abs(rel);
    switch (header.type) {
      case 'directory': {
        if (!this.dirs.has(rel)) {
          const wasWhiteout = this.whiteouts.delete(rel);
          await this.clear(rel);
          mkdirSync(path, 0o700);
          this.dirs.add(rel);
          if (wasWhiteout) overlayOpaque(path);
        }
        await this.setDirAttrs(rel, uid, gid, mode, mtime);
        return;
      }
      case 'file':
      case 'contiguous-file': {
        await this.clear(rel);
        this.whiteouts.delete(rel);
        await this.writeFile(path, stream, uid, gid, mode, mtime, capability);
        return;
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        if (target === '' || target.includes('\0') || Buffer.byteLength(target) > PATH_MAX_BYTES) {
          throw refuse(`symlink ${JSON.stringify(rel.slice(0, 200))} has a bad target`);
        }
        await this.clear(rel);
        this.whiteouts.delete(rel);
        // A symlink's target is data: the container resolves it inside its own root.
        symlinkSync(target, path);
        lchownSync(path, uid, gid);
        lutimesSync(path, mtime, mtime);
        return;
      }
      case 'link': {
        const targetParts = entryComponents(header.linkname ?? '');
        const targetRel = targetParts.join('/');
        const targetParent = targetParts.slice(0, -1).join('/');
        if (targetParts.length === 0 || !this.dirs.has(targetParent) || this.dirs.has(targetRel)) {
          throw refuse(`hardlink ${JSON.stringify(rel.slice(0, 200))} must name a file of this layer`);
        }
        if (targetRel === rel) return;
        await this.clear(rel);
        this.whiteouts.delete(rel);
        try {
          // link(2) never follows the target's last component; its parents are ours.
          linkSync(this.abs(targetRel), path);
        } catch (err) {
          throw refuse(
            `hardlink ${JSON.stringify(rel.slice(0, 200))} to ${JSON.stringify(targetRel.slice(0, 200))}: ${(err as Error).message}`,
          );
        }
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.skipped++;
        return;
      default:
        throw refuse(`unsupported entry type ${String(header.type)} at ${JSON.stringify(rel.slice(0, 200))}`);
    }
  }

  private async writeFile(
    path: string,
    stream: AsyncIterable<unknown>,
    uid: number,
    gid: number,
    mode: number,
    mtime: Date,
    capability: Buffer | null,
  ) {
    const fd = openSync(
      path,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
    try {
      for await (const chunk of stream) {
        const data = chunk as Buffer;
        this.sizeBytes += data.length;
        for (let at = 0; at < data.length;) at += writeSync(fd, data, at);
      }
      // chown clears the set-id bits and the file capability (as a write does): the mode
      // and the capability go after it.
      fchownSync(fd, uid, gid);
      fchmodSync(fd, mode);
      if (capability !== null) {
        setFileCapability(fd, capability);
        this.capabilities++;
      }
      futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  private async setDirAttrs(rel: string, uid: number, gid: number, mode: number, mtime: Date): Promise<void> {
    const path = this.abs(rel);
    lchownSync(path, uid, gid);
    chmodSync(path, mode);
    this.dirTimes.push({ path, mtime });
  }

  private async whiteout(parts: string[], base: string): Promise<void> {
    const parentRel = await this.parentOf(parts);
    if (base === OPAQUE_MARKER) {
      overlayOpaque(this.abs(parentRel));
      return;
    }
    // Other .wh..wh. names are aufs's bookkeeping, not whiteouts.
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return;
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw refuse(`bad whiteout ${JSON.stringify(base)}`);
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    await this.clear(rel);
    overlayWhiteout(this.abs(parentRel), name);
    this.whiteouts.add(rel);
  }

  /** Directory times last: every entry written into a directory changed its mtime. */
  async finish(): Promise<void> {
    for (const { path, mtime } of this.dirTimes.reverse()) utimesSync(path, mtime, mtime);
  }
}

/**
 * Unpacks a layer blob into root (an empty directory, private to the store). Rejects with
 * INVALID_ARGUMENT when the layer breaks a rule or a limit; the caller discards root then.
 */
export async function unpackLayer(
  blob: Readable,
  compression: LayerCompression,
  root: string,
  limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
): Promise<UnpackResult> {
  const meter = new TarMeter(limits.maxTarBytes);
  const tar = extract();
  keepRawXattrs(tar);
  const writer = new LayerWriter(root, limits);
  const consume = (async () => {
    for await (const entry of tar) {
      await writer.entry(entry.header, entry);
      entry.resume();
    }
  })();
  const decompress = decompressor(compression);
  const feed = decompress ? pipeline(blob, decompress, meter, tar) : pipeline(blob, meter, tar);
  try {
    await Promise.all([feed, consume]);
  } catch (err) {
    blob.destroy();
    tar.destroy();
    await Promise.allSettled([feed, consume]);
    if (err instanceof MdockerError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new MdockerError('INVALID_ARGUMENT', `layer refused: ${message}`, undefined, { cause: err });
  }
  await writer.finish();
  return {
    diffId: `sha256:${meter.hash.digest('hex')}`,
    sizeBytes: writer.sizeBytes,
    entries: writer.entries,
    skipped: writer.skipped,
    capabilities: writer.capabilities,
    xattrsSkipped: writer.xattrsSkipped,
  };
}
