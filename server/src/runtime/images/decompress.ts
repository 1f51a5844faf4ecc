/**
 * Layer decompression as streams: gzip through Node's zlib, zstd through fzstd (Node 20's
 * zlib has no zstd; fzstd is a maintained pure-JS decoder, so nothing native to build or
 * download). zstd frames are walked here first to refuse windows over MAX_ZSTD_WINDOW_BYTES
 * before the decoder allocates one: a frame header may ask for 2 GiB.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { MdockerError } from '../errors.js';
import type { LayerCompression } from './oci.js';

/** zstd's own default decoder limit (windowLog 27). */
export const MAX_ZSTD_WINDOW_BYTES = 128 * 1024 * 1024;

const ZSTD_MAGIC = 0xfd2fb528;
const FCS_BYTES = [0, 2, 4, 8];
const DICT_ID_BYTES = [0, 1, 2, 4];
const MAX_BLOCK_BYTES = 128 * 1024;

type Field = 'magic' | 'skipSize' | 'skip' | 'descriptor' | 'header' | 'blockHeader' | 'block' | 'checksum';

function littleEndian(bytes: number[], from = 0, count = bytes.length - from): number {
  let value = 0;
  for (let k = 0; k < count; k++) value += bytes[from + k]! * 2 ** (8 * k);
  return value;
}

function fail(message: string): MdockerError {
  return new MdockerError('INVALID_ARGUMENT', `layer: ${message}`);
}

/**
 * Follows the zstd frame format (RFC 8878 §3.1) over a byte stream, to know each frame's
 * window size before it is decoded; it checks structure only, fzstd decodes.
 */
export class ZstdFrameWalker {
  private field: Field = 'magic';
  private need = 4;
  private scratch: number[] = [];
  private remaining = 0;
  private descriptor = 0;
  private lastBlock = false;

  constructor(private readonly maxWindowBytes: number = MAX_ZSTD_WINDOW_BYTES) {}

  walk(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.field === 'skip' || this.field === 'block') {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.bodyDone();
        continue;
      }
      this.scratch.push(chunk[i++]!);
      if (this.scratch.length === this.need) {
        const bytes = this.scratch;
        this.scratch = [];
        this.complete(bytes);
      }
    }
  }

  /** At the end of the stream: a frame cut short is an error. */
  finish(): void {
    if (this.field !== 'magic' || this.scratch.length > 0) throw fail('truncated zstd stream');
  }

  private fixed(field: Field, bytes: number): void {
    this.field = field;
    this.need = bytes;
  }

  private body(field: 'skip' | 'block', bytes: number): void {
    this.field = field;
    this.remaining = bytes;
    if (bytes === 0) this.bodyDone();
  }

  private bodyDone(): void {
    if (this.field === 'block' && !this.lastBlock) this.fixed('blockHeader', 3);
    else if (this.field === 'block' && ((this.descriptor >> 2) & 1) === 1) this.fixed('checksum', 4);
    else this.fixed('magic', 4);
  }

  private complete(bytes: number[]): void {
    const d = this.descriptor;
    switch (this.field) {
      case 'magic': {
        const magic = littleEndian(bytes);
        if (magic >>> 4 === 0x184d2a5) this.fixed('skipSize', 4);
        else if (magic === ZSTD_MAGIC) this.fixed('descriptor', 1);
        else throw fail('not a zstd stream');
        return;
      }
      case 'skipSize':
        this.body('skip', littleEndian(bytes));
        return;
      case 'descriptor': {
        this.descriptor = bytes[0]!;
        const desc = this.descriptor;
        if (((desc >> 3) & 1) === 1) throw fail('zstd frame header has its reserved bit set');
        const singleSegment = ((desc >> 5) & 1) === 1;
        const fcs = desc >> 6 === 0 ? (singleSegment ? 1 : 0) : FCS_BYTES[desc >> 6]!;
        this.fixed('header', (singleSegment ? 0 : 1) + DICT_ID_BYTES[desc & 3]! + fcs);
        return;
      }
      case 'header': {
        const singleSegment = ((d >> 5) & 1) === 1;
        let window: number;
        if (!singleSegment) {
          const wd = bytes[0]!;
          const base = 2 ** (10 + (wd >> 3));
          window = base + (base / 8) * (wd & 7);
        } else {
          const fcsBytes = d >> 6 === 0 ? 1 : FCS_BYTES[d >> 6]!;
          window = littleEndian(bytes, DICT_ID_BYTES[d & 3]!, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
        }
        if (window > this.maxWindowBytes) {
          throw fail(`zstd window of ${window} bytes is over the limit of ${this.maxWindowBytes}`);
        }
        this.fixed('blockHeader', 3);
        return;
      }
      case 'blockHeader': {
        const header = littleEndian(bytes);
        const type = (header >> 1) & 3;
        const size = Math.floor(header / 8);
        if (type === 3) throw fail('zstd block of the reserved type');
        if (size > MAX_BLOCK_BYTES) throw fail('zstd block over 128 KiB');
        this.lastBlock = (header & 1) === 1;
        this.body('block', type === 1 ? 1 : size);
        return;
      }
      case 'checksum':
        this.fixed('magic', 4);
        return;
      default:
        throw fail('zstd stream in a bad state');
    }
  }
}

/** A zstd-decoding stream: the walker vets each frame, fzstd decodes it block by block. */
class ZstdDecompressStream extends Transform {
  private readonly walker = new ZstdFrameWalker();
  private readonly decoder = new Decompress((data) => {
    if (data.length > 0) this.push(data);
  });

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.walker.walk(chunk);
      this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      callback();
    } catch (err) {
      callback(err instanceof MdockerError ? err : fail(`bad zstd data: ${String(err)}`));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.walker.finish();
      this.decoder.push(new Uint8Array(0), true);
      callback();
    } catch (err) {
      callback(err instanceof MdockerError ? err : fail(`bad zstd data: ${String(err)}`));
    }
  }
}

/** The stream that turns a layer blob of this compression into its tar. */
export function decompressor(compression: LayerCompression): Transform | null {
  if (compression === 'gzip') return createGunzip({ chunkSize: 64 * 1024 });
  if (compression === 'zstd') return new ZstdDecompressStream();
  return null;
}
