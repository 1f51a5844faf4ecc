/**
 * The layer tar writer: what it writes reads back through tar-stream (the store's
 * unpacker's parser) with long and non-ASCII names, long link targets, ids past ustar's
 * fields, every entry type, content padded to blocks, and xattr values as raw bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extract } from 'tar-stream';
import { encodeHeader, paxRecord, TarWriter, type TarHeader } from '../src/runtime/images/tar-writer.js';
import { paxXattrs } from '../src/runtime/images/unpack.js';

async function written(entries: Array<{ header: TarHeader; content?: Buffer }>): Promise<Buffer> {
  const tar = new TarWriter();
  const chunks: Buffer[] = [];
  tar.output.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise((resolve) => tar.output.on('end', resolve));
  for (const { header, content } of entries) {
    await tar.entry(header, async (buffer, offset) => {
      if (content === undefined) return 0;
      return content.copy(buffer, 0, offset, Math.min(content.length, offset + buffer.length));
    });
  }
  await tar.finish();
  await ended;
  return Buffer.concat(chunks);
}

async function read(bytes: Buffer) {
  const out: Array<{ name: string; type: string; linkname: string | null; uid: number; size: number; body: string }> =
    [];
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      const h = entry.header;
      out.push({
        name: h.name,
        type: h.type ?? 'file',
        linkname: h.linkname ?? null,
        uid: h.uid ?? 0,
        size: h.size ?? 0,
        body: Buffer.concat(parts).toString('utf8'),
      });
    }
  })();
  ex.end(bytes);
  await done;
  return out;
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtimeMs: 1_700_000_000_000 };

describe('layer tar writer', () => {
  it('pax records count their own length', () => {
    for (const value of ['', 'x', 'a'.repeat(90), 'b'.repeat(1000)]) {
      const record = paxRecord('path', Buffer.from(value));
      const length = Number(record.toString('latin1').split(' ')[0]);
      assert.equal(length, record.length, value.slice(0, 10));
    }
  });

  it('reads back through tar-stream: names, links, types, ids, content', async () => {
    const long = `${'dir-'.repeat(40)}/file-é`;
    const bytes = await written([
      { header: { ...base, name: 'etc/', type: 'directory', mode: 0o755 } },
      { header: { ...base, name: 'etc/motd', type: 'file', size: 5 }, content: Buffer.from('hello') },
      { header: { ...base, name: long, type: 'file', size: 3, uid: 1000 }, content: Buffer.from('abc') },
      { header: { ...base, name: 'link', type: 'symlink', linkname: `/${'t'.repeat(200)}` } },
      { header: { ...base, name: 'hard', type: 'link', linkname: 'etc/motd' } },
      { header: { ...base, name: 'fifo', type: 'fifo' } },
      { header: { ...base, name: 'big-id', type: 'file', uid: 3_000_000 } },
      // shrank while read: the header's size, zeros after
      { header: { ...base, name: 'short', type: 'file', size: 4 }, content: Buffer.from('ab') },
    ]);
    assert.equal(bytes.length % 512, 0);
    const entries = await read(bytes);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ['etc/', 'directory'],
        ['etc/motd', 'file'],
        [long, 'file'],
        ['link', 'symlink'],
        ['hard', 'link'],
        ['fifo', 'fifo'],
        ['big-id', 'file'],
        ['short', 'file'],
      ],
    );
    assert.equal(entries[1]!.body, 'hello');
    assert.equal(entries[2]!.body, 'abc');
    assert.equal(entries[2]!.uid, 1000);
    assert.equal(entries[3]!.linkname, `/${'t'.repeat(200)}`);
    assert.equal(entries[4]!.linkname, 'etc/motd');
    assert.equal(entries[6]!.uid, 3_000_000);
    assert.equal(entries[7]!.body, 'ab\0\0');
  });

  it('keeps xattr values as bytes (a capability is binary)', async () => {
    const capability = Buffer.from([
      0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    const header = encodeHeader({
      ...base,
      name: 'bin/ping',
      type: 'file',
      xattrs: new Map([
        ['security.capability', capability],
        ['user.note', Buffer.from('text')],
      ]),
    });
    // pax header block, its records (one block here), the ustar header
    assert.equal(header.length, 3 * 512);
    assert.equal(header.toString('latin1', 156, 157), 'x');
    const paxSize = parseInt(header.toString('latin1', 124, 135), 8);
    const records = paxXattrs(header.subarray(512, 512 + paxSize));
    assert.deepEqual(records.get('security.capability'), capability);
    assert.deepEqual(records.get('user.note'), Buffer.from('text'));
    assert.deepEqual(
      (await read(Buffer.concat([header, Buffer.alloc(1024)]))).map((e) => e.name),
      ['bin/ping'],
    );
  });
});
