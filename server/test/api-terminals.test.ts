// Terminals over a real pty running /bin/sh on the host (no root, no container): attach
// order, reattach fidelity, resize policy, flow control both ways, exit.
import assert from 'node:assert/strict';
import { describe, it, after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import xtermHeadless from '@xterm/headless';
import xtermSerialize from '@xterm/addon-serialize';
import { SequenceTail, Screen } from '../src/playground/screen.js';
import {
  INPUT_HIGH_WATER_BYTES,
  INPUT_MAX_BYTES,
  OUTPUT_HOLD_MS,
  RESIZE_COALESCE_MS,
  RESIZES_PER_SECOND,
  Terminal,
  type TerminalOptions,
  type TerminalSink,
} from '../src/playground/terminals.js';
import { spawnPty } from '../src/runtime/pty.js';
import { FLOW_HIGH_WATER_BYTES, WS_CLOSE, type TerminalServerMessage } from '../src/protocol/index.js';

const { Terminal: Headless } = xtermHeadless;
const { SerializeAddon } = xtermSerialize;

class FakeSink implements TerminalSink {
  readonly frames: (Buffer | TerminalServerMessage)[] = [];
  closed: { code: number; reason: string } | null = null;
  inputPaused = false;
  inputPauses = 0;
  #waiters: (() => void)[] = [];

  send(data: Buffer | string): void {
    this.frames.push(typeof data === 'string' ? (JSON.parse(data) as TerminalServerMessage) : Buffer.from(data));
    for (const wake of this.#waiters.splice(0)) wake();
  }

  close(code: number, reason: string): void {
    this.closed = { code, reason };
    for (const wake of this.#waiters.splice(0)) wake();
  }

  pauseInput(): void {
    this.inputPaused = true;
    this.inputPauses++;
  }

  resumeInput(): void {
    this.inputPaused = false;
  }

  messages(): TerminalServerMessage[] {
    return this.frames.filter((frame): frame is TerminalServerMessage => !Buffer.isBuffer(frame));
  }

  bytes(): Buffer {
    return Buffer.concat(this.frames.filter((frame): frame is Buffer => Buffer.isBuffer(frame)));
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  async waitFor(predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.text().slice(-300))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

const terminals: Terminal[] = [];
after(() => {
  for (const terminal of terminals) terminal.dispose();
});

function hostShell(options: { cols?: number; rows?: number; stall?: number; script?: string } = {}): Terminal {
  const cols = options.cols ?? 80;
  const rows = options.rows ?? 24;
  const args = options.script === undefined ? [] : ['-c', options.script];
  const process = spawnPty('/bin/sh', args, {
    cols,
    rows,
    cwd: '/tmp',
    env: { PATH: '/usr/bin:/bin', HOME: '/tmp', PS1: '$ ', LANG: 'C.UTF-8', TERM: 'xterm-256color' },
  });
  const terminal = new Terminal({
    id: 0,
    containerId: 'test',
    cmd: ['/bin/sh'],
    pty: process,
    cols,
    rows,
    scrollbackLines: 1000,
    flowStallTimeoutMs: options.stall ?? 60_000,
  });
  terminals.push(terminal);
  return terminal;
}

/** A pty whose output the test writes: reads arrive exactly when and as the test says. */
class ScriptedPty {
  readonly pid = 0;
  #onData: ((data: Buffer) => void) | null = null;
  #onExit: ((exit: { exitCode: number; signal?: number }) => void) | null = null;

  onData(listener: (data: Buffer) => void): void {
    this.#onData = listener;
  }

  onExit(listener: (exit: { exitCode: number; signal?: number }) => void): void {
    this.#onExit = listener;
  }

  read(text: string): void {
    this.#onData?.(Buffer.from(text));
  }

  exit(exitCode: number): void {
    this.#onExit?.({ exitCode });
  }

  write(): void {}
  readonly queuedInputBytes = 0;
  onInputWritten(): void {}
  resize(): void {}
  pause(): void {}
  resume(): void {}
  kill(): void {}
}

function scriptedTerminal(): { terminal: Terminal; pty: ScriptedPty } {
  const pty = new ScriptedPty();
  const terminal = new Terminal({
    id: 0,
    containerId: 'test',
    cmd: ['/bin/sh'],
    pty: pty as unknown as TerminalOptions['pty'],
    cols: 80,
    rows: 24,
    scrollbackLines: 1000,
    flowStallTimeoutMs: 60_000,
  });
  terminals.push(terminal);
  return { terminal, pty };
}

/** What a browser's xterm would show after writing these bytes. */
async function render(bytes: Buffer, cols: number, rows: number): Promise<string> {
  const terminal = new Headless({ cols, rows, scrollback: 1000, allowProposedApi: true });
  const serializer = new SerializeAddon();
  terminal.loadAddon(serializer as unknown as Parameters<typeof terminal.loadAddon>[0]);
  await new Promise<void>((resolve) => terminal.write(bytes, resolve));
  const screen = serializer.serialize();
  terminal.dispose();
  return screen;
}

function ackAll(
  terminal: { receive(data: Buffer, isBinary: boolean): void },
  sink: FakeSink,
  acked: { bytes: number },
): void {
  const total = sink.bytes().length;
  if (total > acked.bytes) {
    terminal.receive(Buffer.from(JSON.stringify({ type: 'ack', bytes: total - acked.bytes })), false);
    acked.bytes = total;
  }
}

describe('SequenceTail', () => {
  it('keeps an escape sequence split across chunks and drops it once complete', () => {
    const tail = new SequenceTail();
    assert.equal(tail.feed(Buffer.from('abc\x1b[3')), 0);
    assert.equal(tail.current()?.toString(), '\x1b[3');
    assert.equal(tail.feed(Buffer.from('1mred')), 2);
    assert.equal(tail.current()?.length, 0);
  });

  it('keeps a UTF-8 character split across chunks', () => {
    const tail = new SequenceTail();
    const euro = Buffer.from('€'); // e2 82 ac
    tail.feed(Buffer.concat([Buffer.from('x'), euro.subarray(0, 2)]));
    assert.deepEqual(tail.current(), euro.subarray(0, 2));
    assert.equal(tail.feed(euro.subarray(2)), 1);
    assert.equal(tail.inGround, true);
  });

  it('follows OSC ended by BEL and DCS ended by ST', () => {
    const tail = new SequenceTail();
    tail.feed(Buffer.from('\x1b]0;title'));
    assert.equal(tail.inGround, false);
    tail.feed(Buffer.from('\x07'));
    assert.equal(tail.inGround, true);
    tail.feed(Buffer.from('\x1bPq#0;2;0;0;0'));
    assert.equal(tail.inGround, false);
    tail.feed(Buffer.from('\x1b\\'));
    assert.equal(tail.inGround, true);
  });

  it('finds the same ground points whether a stream comes in chunks or byte by byte', () => {
    // Plain text (the fast path), escape sequences, UTF-8 and C1 controls, cut anywhere.
    const pieces = [
      'plain text\r\n',
      'y\n',
      '\x1b[31m',
      'red',
      '\x1b]0;title\x07',
      '€',
      'ö',
      '\u0085',
      '\x18',
      '\x1b',
      '[',
      '1;2',
      'H',
    ];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const stream = Buffer.from(Array.from({ length: 20 }, () => pieces[random(pieces.length)]).join(''));
      const chunked = new SequenceTail();
      const bytewise = new SequenceTail();
      for (let at = 0; at < stream.length;) {
        const chunk = stream.subarray(at, at + 1 + random(24));
        at += chunk.length;
        let expected = bytewise.inGround ? 0 : -1;
        for (let i = 0; i < chunk.length; i++) {
          bytewise.feed(chunk.subarray(i, i + 1));
          if (expected < 0 && bytewise.inGround) expected = i + 1;
        }
        assert.equal(chunked.feed(chunk), expected, JSON.stringify(stream.toString()));
        assert.equal(chunked.inGround, bytewise.inGround);
        assert.deepEqual(chunked.current(), bytewise.current());
      }
    }
  });

  it('gives up on an over-long sequence instead of buffering it', () => {
    const tail = new SequenceTail();
    tail.feed(Buffer.from('\x1b]52;c;'));
    tail.feed(Buffer.alloc(70 * 1024, 0x41));
    assert.equal(tail.current(), null);
    assert.equal(tail.feed(Buffer.from('AAA\x07rest')), 4);
    assert.equal(tail.current()?.length, 0);
  });
});

describe('Screen', () => {
  it('snapshots exactly the bytes written before the call, even mid-sequence', async () => {
    const screen = new Screen({ cols: 20, rows: 4, scrollbackLines: 10 });
    screen.write(Buffer.from('hello \x1b[3'));
    const first = screen.snapshot();
    screen.write(Buffer.from('1mred\x1b[0m'));
    const snapshot = await first;
    const later = Buffer.from('1mred\x1b[0m');
    assert.equal(
      await render(Buffer.concat([snapshot.data, later]), 20, 4),
      await render(Buffer.from('hello \x1b[31mred\x1b[0m'), 20, 4),
    );
    screen.dispose();
  });
});

describe('Terminal', () => {
  it('sends attached, then the screen, then live output that a shell echoes', async () => {
    const terminal = hostShell();
    const sink = new FakeSink();
    const client = terminal.attach(sink);
    await sink.waitFor(() => sink.frames.length >= 2);
    const first = sink.frames[0] as TerminalServerMessage;
    assert.equal(first.type, 'attached');
    assert.ok(Buffer.isBuffer(sink.frames[1]), 'the screen comes as one binary frame');
    client.receive(Buffer.from('echo $((6*7))\r'), true);
    await sink.waitFor(() => /\r\n42\r\n/.test(sink.text()));
    client.detach();
    terminal.dispose();
  });

  it('gives a reattaching client the same screen as one attached all along, under a colored stream', async () => {
    const terminal = hostShell({ cols: 60, rows: 10 });
    const steady = new FakeSink();
    const steadyClient = terminal.attach(steady);
    const acked = { bytes: 0 };
    await steady.waitFor(() => steady.frames.length >= 2);
    // Colors, UTF-8 and cursor moves, fast enough that chunk boundaries fall inside sequences.
    steadyClient.receive(
      Buffer.from(
        "i=0; while [ $i -lt 3000 ]; do printf '\\033[3%dm%d é€\\033[0m \\033[1;4mX\\033[m' $((i%8)) $i; i=$((i+1)); done; echo DONE-$((40+2))\r",
      ),
      true,
    );
    const late: FakeSink[] = [];
    for (let i = 0; i < 6; i++) {
      await sleep(40);
      const sink = new FakeSink();
      terminal.attach(sink);
      late.push(sink);
      ackAll(steadyClient, steady, acked);
    }
    await steady.waitFor(() => {
      ackAll(steadyClient, steady, acked);
      // DONE-42, not the echo of the command line (which says DONE-$((40+2))).
      return /DONE-42\r\n/.test(steady.text());
    }, 20_000);
    await sleep(200);
    const expected = await render(steady.bytes(), 60, 10);
    for (const sink of late) {
      assert.equal(sink.messages()[0]?.type, 'attached');
      assert.equal(await render(sink.bytes(), 60, 10), expected);
    }
    terminal.dispose();
  });

  it('sizes the pty to the smallest attached client, within bounds', async () => {
    const terminal = hostShell();
    const a = new FakeSink();
    const b = new FakeSink();
    const clientA = terminal.attach(a, { cols: 100, rows: 30 });
    const clientB = terminal.attach(b);
    clientB.receive(Buffer.from(JSON.stringify({ type: 'resize', cols: 70, rows: 40 })), false);
    assert.equal(terminal.cols, 70);
    assert.equal(terminal.rows, 30);
    clientB.receive(Buffer.from(JSON.stringify({ type: 'resize', cols: 1, rows: 100000 })), false);
    assert.equal(terminal.cols, 2);
    assert.equal(terminal.rows, 30);
    clientB.detach();
    assert.equal(terminal.cols, 100);
    await a.waitFor(() => a.frames.length >= 2);
    clientA.receive(Buffer.from('stty size\r'), true);
    await a.waitFor(() => /30 100/.test(a.text()));
    terminal.dispose();
  });

  it('reflows at most a bounded number of times for a flood of resizes, ending at the last size', async () => {
    const { terminal, pty } = scriptedTerminal();
    let resizes = 0;
    pty.resize = () => {
      resizes++;
    };
    const sink = new FakeSink();
    const client = terminal.attach(sink, { cols: 80, rows: 24 });
    for (let i = 0; i < 1000; i++) {
      client.receive(Buffer.from(JSON.stringify({ type: 'resize', cols: 40 + (i % 100), rows: 20 })), false);
    }
    client.receive(Buffer.from(JSON.stringify({ type: 'resize', cols: 123, rows: 45 })), false);
    assert.ok(resizes <= RESIZES_PER_SECOND, `${resizes} reflows at once`);
    await sleep(RESIZE_COALESCE_MS + 50);
    assert.equal(terminal.cols, 123);
    assert.equal(terminal.rows, 45);
    assert.ok(resizes <= RESIZES_PER_SECOND + 1, `${resizes} reflows in all`);
    terminal.dispose();
  });

  it('answers a malformed control message with an error and carries on', async () => {
    const terminal = hostShell();
    const sink = new FakeSink();
    const client = terminal.attach(sink);
    client.receive(Buffer.from('{"type":"resize","cols":"wide"}'), false);
    client.receive(Buffer.from('not json'), false);
    await sink.waitFor(() => sink.messages().filter((m) => m.type === 'error').length === 2);
    client.receive(Buffer.from('echo ok-$((1+1))\r'), true);
    await sink.waitFor(() => /ok-2/.test(sink.text()));
    terminal.dispose();
  });

  it('pauses the pty for a client that does not ack, and drops it when it stays stuck', async () => {
    const terminal = hostShell({ stall: 1500, script: 'yes' });
    const stuck = new FakeSink();
    terminal.attach(stuck);
    await stuck.waitFor(() => terminal.paused, 5000);
    await sleep(300);
    const received = stuck.bytes().length;
    // Bounded: at most the high-water mark plus a read or two past it.
    assert.ok(received < FLOW_HIGH_WATER_BYTES + 256 * 1024, `received ${received}`);
    assert.ok(terminal.backlogBytes < FLOW_HIGH_WATER_BYTES + 256 * 1024);
    await sleep(300);
    assert.equal(stuck.bytes().length, received, 'nothing more is sent while paused');
    await stuck.waitFor(() => stuck.closed !== null, 5000);
    assert.equal(stuck.closed?.code, WS_CLOSE.TOO_SLOW);
    terminal.dispose();
  });

  it('keeps streaming to a client that acks, with a bounded backlog', async () => {
    const terminal = hostShell({ script: 'yes' });
    const sink = new FakeSink();
    const client = terminal.attach(sink);
    const acked = { bytes: 0 };
    const start = Date.now();
    let maxBacklog = 0;
    // Past the high-water mark several times over: the pty was paused and resumed on acks.
    while (acked.bytes < 4 * FLOW_HIGH_WATER_BYTES && Date.now() - start < 15_000) {
      await sleep(20);
      maxBacklog = Math.max(maxBacklog, terminal.backlogBytes);
      ackAll(client, sink, acked);
    }
    assert.ok(acked.bytes >= 4 * FLOW_HIGH_WATER_BYTES, `streamed ${acked.bytes}`);
    assert.ok(maxBacklog < 2 * FLOW_HIGH_WATER_BYTES + 256 * 1024, `backlog ${maxBacklog}`);
    // Free the memory of this sink's frames before the next test.
    sink.frames.length = 0;
    terminal.dispose();
  });

  it("stops reading a client's input while the program does not read it, and reads it again once it does", async () => {
    const terminal = hostShell({ script: 'stty raw -echo; echo ready; sleep 2; exec cat >/dev/null' });
    const typist = new FakeSink();
    const viewer = new FakeSink();
    const client = terminal.attach(typist);
    terminal.attach(viewer);
    await typist.waitFor(() => typist.text().includes('ready'));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    while (!typist.inputPaused && sent < 64 * chunk.length) {
      client.receive(chunk, true);
      sent += chunk.length;
    }
    assert.ok(typist.inputPaused, `not paused after ${sent} bytes`);
    assert.ok(terminal.queuedInputBytes > INPUT_HIGH_WATER_BYTES);
    assert.ok(terminal.queuedInputBytes <= INPUT_HIGH_WATER_BYTES + chunk.length, `${terminal.queuedInputBytes}`);
    assert.equal(viewer.inputPaused, false, 'a client that sends nothing is still read');
    // cat drains the queue: the typist is read again.
    await typist.waitFor(() => !typist.inputPaused, 10_000);
    assert.equal(typist.closed, null);
    await typist.waitFor(() => terminal.queuedInputBytes === 0, 10_000);
    terminal.dispose();
  });

  it('closes a client that pushes input past the cap (4008), however many clients push', async () => {
    const terminal = hostShell({ script: 'stty raw -echo; echo ready; sleep 100' });
    const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
    const clients = sinks.map((sink) => terminal.attach(sink));
    await sinks[0]!.waitFor(() => sinks[0]!.text().includes('ready'));
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let largest = 0;
    // Clients that ignore the pause (what a socket had read before it was paused, or a
    // client of our own that does not go through TCP): each sends 8 MiB regardless.
    for (let round = 0; round < 128; round++) {
      for (const client of clients) client.receive(chunk, true);
      largest = Math.max(largest, terminal.queuedInputBytes);
    }
    assert.ok(largest <= INPUT_MAX_BYTES, `queued ${largest}`);
    for (const sink of sinks) {
      assert.equal(sink.closed?.code, WS_CLOSE.TOO_SLOW);
    }
    terminal.dispose();
  });

  it('closes a paused client that kept pushing after the stall timeout, and reads again one that stopped', async () => {
    const terminal = hostShell({ stall: 400, script: 'stty raw -echo; echo ready; sleep 100' });
    const pusher = new FakeSink();
    const polite = new FakeSink();
    const pushing = terminal.attach(pusher);
    const stopping = terminal.attach(polite);
    await pusher.waitFor(() => pusher.text().includes('ready'));
    const chunk = Buffer.alloc(64 * 1024, 0x63);
    while (!pusher.inputPaused) pushing.receive(chunk, true);
    pushing.receive(chunk, true); // after its pause: it keeps pushing
    stopping.receive(chunk, true); // over the mark: paused at once, and sends no more
    assert.ok(polite.inputPaused);
    await pusher.waitFor(() => pusher.closed !== null, 5000);
    assert.equal(pusher.closed?.code, WS_CLOSE.TOO_SLOW);
    await polite.waitFor(() => !polite.inputPaused, 5000);
    assert.equal(polite.closed, null);
    assert.ok(terminal.queuedInputBytes <= INPUT_MAX_BYTES);
    terminal.dispose();
  });

  it('sends output at once after a quiet spell, and a stream of reads as one message per hold period', async () => {
    const { terminal, pty } = scriptedTerminal();
    const sink = new FakeSink();
    terminal.attach(sink);
    await sink.waitFor(() => sink.frames.length >= 2);
    await sleep(2 * OUTPUT_HOLD_MS);
    const before = sink.frames.length;
    pty.read('x');
    // An echo is not held: it goes out in the same turn.
    assert.equal(sink.frames.length, before + 1);
    for (let i = 0; i < 200; i++) pty.read(`line ${i}\r\n`);
    assert.equal(sink.frames.length, before + 1, 'a stream is held');
    await sink.waitFor(() => sink.text().includes('line 199\r\n'));
    assert.equal(sink.frames.length, before + 2, 'the held reads go out as one message');
    const late = new FakeSink();
    terminal.attach(late);
    await late.waitFor(() => late.frames.length >= 2);
    // The screen got the same bytes as the client.
    assert.equal(await render(late.bytes(), 80, 24), await render(sink.bytes(), 80, 24));
    terminal.dispose();
  });

  it('sends held output before the exit', async () => {
    const { terminal, pty } = scriptedTerminal();
    const sink = new FakeSink();
    terminal.attach(sink);
    await sink.waitFor(() => sink.frames.length >= 2);
    const exited = new Promise<number>((resolve) => terminal.onPtyExit((code) => resolve(code)));
    pty.read('first ');
    pty.read('second ');
    pty.read('last-words');
    pty.exit(0);
    terminal.finish({ exitCode: await exited, reason: 'exited' });
    assert.match(sink.text(), /first second last-words$/);
    assert.deepEqual(sink.messages().at(-1), { type: 'exit', exitCode: 0, reason: 'exited' });
    terminal.dispose();
  });

  it('reports the exit once the screen has every byte, then tells clients and closes them', async () => {
    const terminal = hostShell();
    const sink = new FakeSink();
    const client = terminal.attach(sink);
    const exited = new Promise<number>((resolve) => terminal.onPtyExit((code) => resolve(code)));
    await sink.waitFor(() => sink.frames.length >= 2);
    client.receive(Buffer.from('echo last-words; exit 3\r'), true);
    const code = await exited;
    assert.equal(code, 3);
    terminal.finish({ exitCode: code, reason: 'exited' });
    assert.deepEqual(sink.messages().at(-1), { type: 'exit', exitCode: 3, reason: 'exited' });
    assert.equal(sink.closed?.code, WS_CLOSE.NORMAL);
    const late = new FakeSink();
    terminal.attach(late);
    await late.waitFor(() => late.closed !== null);
    assert.match(late.text(), /last-words/);
    assert.equal(late.messages().at(-1)?.type, 'exit');
    terminal.dispose();
  });
});
