/**
 * A tar writer (ustar headers, pax extended headers where ustar cannot say it) for layers
 * the runtime makes. Written here because a layer's xattrs are bytes (a file capability
 * is binary) and tar-stream's pack writes pax values as UTF-8 strings; tar-stream still
 * reads what this writes, as every other reader does.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';

const BLOCK = 512;
/** The largest number an octal ustar field of this width holds (width - 1 digits). */
const maxOctal = (width: number) => 8 ** (width - 1) - 1;

export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo';

const TYPEFLAGS: Record<TarEntryType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

export interface TarHeader {
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (a regular file's only). */
  size: number;
  mtimeMs: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, as SCHILY.xattr.NAME records with their raw bytes. */
  xattrs?: ReadonlyMap<string, Buffer>;
}

/** One pax record, "LENGTH KEY=VALUE\n", LENGTH counting the whole record with its own digits. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(` ${key}=`) + value.length + 1;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

function isPlainAscii(text: string, maxBytes: number): boolean {
  return Buffer.byteLength(text) <= maxBytes && /^[\x20-\x7e]*$/.test(text);
}

function writeString(block: Buffer, offset: number, width: number, text: string): void {
  Buffer.from(text).copy(block, offset, 0, width);
}

/**
 * A number field: octal, or past what its digits hold GNU's base-256 form (0x80, then the
 * value big-endian), which GNU tar, libarchive and tar-stream read.
 */
function writeNumber(block: Buffer, offset: number, width: number, value: number): void {
  const n = Math.max(0, Math.floor(value));
  if (n <= maxOctal(width)) {
    block.write(n.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'latin1');
    return;
  }
  let rest = BigInt(n);
  for (let i = width - 1; i > 0; i--) {
    block[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  block[offset] = 0x80;
}

function ustarBlock(name: string, typeflag: string, h: Omit<TarHeader, 'name' | 'type'>): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, name);
  writeNumber(block, 100, 8, h.mode & 0o7777);
  writeNumber(block, 108, 8, h.uid);
  writeNumber(block, 116, 8, h.gid);
  writeNumber(block, 124, 12, h.size);
  writeNumber(block, 136, 12, h.mtimeMs / 1000);
  block.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  block.write(typeflag, 156, 1, 'latin1');
  writeString(block, 157, 100, h.linkname ?? '');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeNumber(block, 329, 8, h.devmajor ?? 0);
  writeNumber(block, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return block;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/**
 * The header blocks of an entry: a pax header first when a name or link name is longer
 * than ustar's 100 bytes or not plain ASCII, an id or a size too large for its field, or
 * there are xattrs; then the ustar header.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  if (!isPlainAscii(h.name, 100)) records.push(paxRecord('path', Buffer.from(h.name)));
  if (h.linkname !== undefined && !isPlainAscii(h.linkname, 100)) {
    records.push(paxRecord('linkpath', Buffer.from(h.linkname)));
  }
  if (h.uid > maxOctal(8)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > maxOctal(8)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.size > maxOctal(12)) records.push(paxRecord('size', Buffer.from(String(h.size))));
  for (const [name, value] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${name}`, value));
  const main = ustarBlock(h.name, TYPEFLAGS[h.type], h);
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  const paxHeader = ustarBlock('PaxHeader', 'x', { ...h, size: pax.length, linkname: '' });
  return Buffer.concat([paxHeader, pax, padding(pax.length), main]);
}

/** Writes entries to a readable stream (`output`), with backpressure. */
export class TarWriter {
  readonly output = new PassThrough();

  private async write(chunk: Buffer): Promise<void> {
    if (this.output.destroyed) throw new Error('the layer tar closed');
    if (!this.output.write(chunk)) await once(this.output, 'drain');
  }

  /**
   * One entry; a regular file's content comes from read (called with a buffer and the
   * offset to fill from, returns the bytes read, 0 at the end): exactly h.size bytes are
   * written, zeros when the file ended sooner.
   */
  async entry(h: TarHeader, read?: (buffer: Buffer, offset: number) => Promise<number>): Promise<void> {
    await this.write(encodeHeader(h));
    if (h.type !== 'file' || h.size === 0) return;
    const buffer = Buffer.alloc(64 * 1024);
    let offset = 0;
    while (offset < h.size) {
      const want = Math.min(buffer.length, h.size - offset);
      const got = read === undefined ? 0 : await read(buffer.subarray(0, want), offset);
      const chunk = got === 0 ? Buffer.alloc(want) : Buffer.from(buffer.subarray(0, got));
      await this.write(chunk);
      offset += chunk.length;
    }
    await this.write(padding(h.size));
  }

  /** The end-of-archive blocks, and the end of output. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
    this.output.end();
  }
}
