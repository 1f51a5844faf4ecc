// The server's screen skips plain text that scrolls past its scrollback before the parser
// sees it. These tests compare it, byte stream by byte stream, with an @xterm/headless
// terminal that parses every byte: the serialized screen, scrollback included, and the
// cursor must be the same, whatever the stream (long lines, bare LFs, scroll regions, the
// alternate screen, character set shifts, colours, chunks of any size).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import xtermHeadless from '@xterm/headless';
import xtermSerialize from '@xterm/addon-serialize';
import { Screen } from '../src/playground/screen.js';

const { Terminal } = xtermHeadless;
const { SerializeAddon } = xtermSerialize;

interface Size {
  cols: number;
  rows: number;
  scrollback: number;
}

async function reference(stream: Buffer[], size: Size): Promise<{ screen: string; x: number; y: number }> {
  const terminal = new Terminal({ ...size, allowProposedApi: true });
  const serializer = new SerializeAddon();
  terminal.loadAddon(serializer as unknown as Parameters<typeof terminal.loadAddon>[0]);
  for (const chunk of stream) terminal.write(chunk);
  await new Promise<void>((resolve) => terminal.write('', resolve));
  const result = {
    screen: serializer.serialize({ scrollback: size.scrollback }),
    x: terminal.buffer.active.cursorX,
    y: terminal.buffer.active.cursorY,
  };
  terminal.dispose();
  return result;
}

/** Writes the stream as the terminal's reader would, letting the parser run in between now and then. */
async function throughScreen(
  stream: Buffer[],
  size: Size,
  pauses: (i: number) => boolean,
): Promise<{ screen: string; x: number; y: number; skipped: number }> {
  const screen = new Screen({ cols: size.cols, rows: size.rows, scrollbackLines: size.scrollback });
  for (const [i, chunk] of stream.entries()) {
    screen.write(chunk);
    if (pauses(i)) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const snapshot = await screen.snapshot();
  await screen.settled();
  const { cursor } = screen.text();
  const skipped = screen.skippedBytes;
  screen.dispose();
  return { screen: snapshot.data.toString('utf8'), x: cursor.x, y: cursor.y, skipped };
}

/** A small deterministic generator, so a failure names its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function lines(n: number, width: (i: number) => number, ending = '\r\n'): string {
  let out = '';
  for (let i = 0; i < n; i++) out += `${i}:`.padEnd(Math.max(2, width(i)), String.fromCharCode(97 + (i % 26))) + ending;
  return out;
}

/** Splits text into chunks of random sizes (the pty hands over what it has). */
function chunks(text: string, next: () => number, largest: number): Buffer[] {
  const bytes = Buffer.from(text, 'latin1');
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(next() * largest);
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

describe('Screen, plain text that scrolls past the scrollback', () => {
  it('skips most of a flood, and the screen and scrollback are those of a terminal that parsed it all', async () => {
    const size = { cols: 80, rows: 24, scrollback: 100 };
    const text = '\x1b[31mred prompt\x1b[0m $ yes\r\n' + lines(20_000, () => 79);
    const stream = chunks(text, random(1), 4096);
    // Each read is an event of its own, as from the pty: the parser runs in between.
    const ours = await throughScreen(stream, size, () => true);
    const theirs = await reference(stream, size);
    assert.equal(ours.screen, theirs.screen);
    assert.deepEqual([ours.x, ours.y], [theirs.x, theirs.y]);
    assert.ok(ours.skipped > Buffer.byteLength(text) / 2, `skipped ${ours.skipped} of ${Buffer.byteLength(text)}`);
  });

  it('parses a long flood once, not once per hold buffer, and the screen is the same', async () => {
    // The playground's scrollback, and several hold buffers' worth of 80-column lines in
    // the pty's 4 KiB reads: each full buffer is cut to its last lines and held on.
    const size = { cols: 80, rows: 24, scrollback: 2000 };
    const text = '$ yes\r\n' + lines(60_000, () => 79);
    const stream = chunks(text, random(7), 4096);
    const ours = await throughScreen(stream, size, (i) => i % 16 === 0);
    const theirs = await reference(stream, size);
    assert.equal(ours.screen, theirs.screen);
    assert.deepEqual([ours.x, ours.y], [theirs.x, theirs.y]);
    const total = Buffer.byteLength(text);
    assert.ok(ours.skipped > total * 0.9, `skipped ${ours.skipped} of ${total}`);
  });

  it('keeps what the parser must see: a region, the alternate screen, SO/SI, bare LFs, long lines, colours', async () => {
    const cases: [string, string][] = [
      ['a scroll region: a line feed on its bottom row overwrites lines outside it', '\x1b[3;10r\x1b[24;1H'],
      ['the cursor below a scroll region', '\x1b[2;5r\x1b[20;1H'],
      ['the alternate screen', '\x1b[?1049h'],
      ['a character set shifted in the flood', '\x1b)0'],
      ['colours and insert mode', '\x1b[44;33m\x1b[4h'],
      ['no wraparound', '\x1b[?7l'],
      ['the cursor mid-screen', '\x1b[5;30H'],
    ];
    for (const [what, prefix] of cases) {
      for (const seed of [2, 3, 4]) {
        const next = random(seed);
        const size = { cols: 40, rows: 10, scrollback: seed === 4 ? 0 : 50 };
        let text = prefix;
        for (let block = 0; block < 6; block++) {
          const width = (i: number) => Math.floor(((i * 7919 + block) % 97) * (next() < 0.1 ? 3 : 0.6));
          text += lines(200 + Math.floor(next() * 300), width, next() < 0.2 ? '\n' : '\r\n');
          if (what.includes('shifted') && block === 2) text += '\x0eqqq\x0f\x0e';
          if (next() < 0.3) text += '\x1b[32mgreen\x1b[0m\r\n';
        }
        const stream = chunks(text, next, 2048);
        const theirs = await reference(stream, size);
        for (const pauses of [() => false, (i: number) => i % 7 === 0]) {
          const ours = await throughScreen(stream, size, pauses);
          assert.equal(ours.screen, theirs.screen, `${what}, seed ${seed}`);
          assert.deepEqual([ours.x, ours.y], [theirs.x, theirs.y], `${what}, seed ${seed}: cursor`);
        }
      }
    }
  });

  it('skips nothing below a scroll region, where each line overwrites the one before', async () => {
    const size = { cols: 40, rows: 10, scrollback: 20 };
    // The cursor sits on the bottom row, under the region: line feeds do not scroll, and
    // the long first line shows through the short ones written over it.
    const text = '\x1b[2;5r\x1b[10;1H' + 'X'.repeat(39) + '\r\n' + lines(3000, () => 3);
    const stream = chunks(text, random(6), 1024);
    const ours = await throughScreen(stream, size, () => true);
    const theirs = await reference(stream, size);
    assert.match(theirs.screen, /XXXX/);
    assert.equal(ours.screen, theirs.screen);
    assert.equal(ours.skipped, 0);
  });

  it('skips nothing the screen or its scrollback would show', async () => {
    const size = { cols: 80, rows: 24, scrollback: 100 };
    // Fewer lines than two screens and the scrollback: every one of them is kept.
    const stream = chunks(
      lines(24 * 2 + 100, () => 60),
      random(5),
      512,
    );
    const ours = await throughScreen(stream, size, () => false);
    assert.equal(ours.skipped, 0);
    assert.equal(ours.screen, (await reference(stream, size)).screen);
  });

  it('reads the held text before answering: text() after settled() shows the last line', async () => {
    const screen = new Screen({ cols: 40, rows: 5, scrollbackLines: 10 });
    screen.write(Buffer.from(lines(5000, () => 20)));
    screen.write(Buffer.from('last line'));
    await screen.settled();
    const { lines: rows, cursor } = screen.text();
    assert.equal(rows[cursor.y], 'last line');
    assert.ok(screen.skippedBytes > 0);
    screen.dispose();
  });
});
