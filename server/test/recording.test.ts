// Terminal recordings: asciicast v2 files with markers, written in batches, capped in size,
// stats beside them, expired and swept (an earlier run's leftovers too), and never a throw
// into the terminal when the disk fails.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Recordings, TRUNCATED_MARKER, type RecordingOwner } from '../src/playground/recording.js';
import { MdockerError } from '../src/runtime/errors.js';
import type { StatsSample } from '../src/protocol/index.js';

const ID_A = 'a1b2c3d4e5f6';
const ID_B = 'b1b2c3d4e5f6a7b8';
const OWNER: RecordingOwner = { sessionId: 's1', classId: 'c1', studentId: 'st1' };

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'mdocker-rec-'));
  roots.push(root);
  return join(root, 'recordings');
}

/** A clock the test moves. */
function clock(startMs = Date.UTC(2025, 0, 2, 3, 4, 5, 250)): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

interface Warning {
  obj: object;
  msg: string;
}

function logger(): { warn(obj: object, msg: string): void; warnings: Warning[] } {
  const warnings: Warning[] = [];
  return { warnings, warn: (obj, msg) => warnings.push({ obj, msg }) };
}

type Event = [number, string, string];

async function readCast(
  recordings: Recordings,
  id: string,
  tid: number,
): Promise<{ header: Record<string, unknown>; events: Event[]; text: string }> {
  const path = await recordings.castPath(id, tid);
  assert.ok(path, 'the recording is kept');
  const text = readFileSync(path, 'utf8');
  assert.ok(text.endsWith('\n'), 'every line is complete');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  const events = lines.slice(1).map((line) => JSON.parse(line) as Event);
  return { header, events, text };
}

function outputText(events: Event[]): string {
  return events
    .filter((e) => e[1] === 'o')
    .map((e) => e[2])
    .join('');
}

function sample(t: number): StatsSample {
  return {
    t,
    cpuPercent: 12.5,
    cpuUsageUsec: 1000,
    memoryBytes: 4096,
    memoryLimitBytes: null,
    pids: 3,
    pidsLimit: 64,
    oomKills: 0,
    pidsLimitHits: 0,
    cpuThrottledPeriods: 0,
    cpuThrottledUsec: 0,
  };
}

/** Counts (or fails) every write made through a FileHandle, for the duration of `fn`. */
async function withFileHandleWrites<T>(
  hook: (call: () => Promise<unknown>) => Promise<unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  const probe = await fsp.open(join(tmpdir(), `mdocker-rec-probe-${process.pid}`), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
  await probe.close();
  rmSync(join(tmpdir(), `mdocker-rec-probe-${process.pid}`), { force: true });
  const original = proto.write;
  proto.write = function (this: unknown, ...args: unknown[]) {
    return hook(() => original.apply(this, args));
  };
  try {
    return await fn();
  } finally {
    proto.write = original;
  }
}

describe('recordings as asciicast v2', () => {
  it('writes a header and one JSON event a line, times relative to the header, monotonic, 6 decimals at most', async () => {
    const c = clock();
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, now: c.now });
    const rec = recordings.open(ID_A, 0, { cols: 100, rows: 30, title: 'alpine: sh', owner: OWNER });
    c.advance(1000);
    rec.output(Buffer.from('hello\r\n'));
    c.advance(2);
    rec.output(Buffer.from('$ '));
    c.advance(500);
    rec.resize(120, 40);
    c.advance(100);
    rec.marker('oom-kill');
    c.advance(1);
    recordings.marker(ID_A, 'pids-limit');
    c.advance(1234);
    rec.output(Buffer.from('"quoted" \\ \u0007\n'));

    const { header, events } = await readCast(recordings, ID_A, 0);
    assert.deepEqual(header, {
      version: 2,
      width: 100,
      height: 30,
      timestamp: Math.floor(Date.UTC(2025, 0, 2, 3, 4, 5) / 1000),
      env: { TERM: 'xterm-256color', SHELL: '/bin/sh' },
      title: 'alpine: sh',
    });
    assert.deepEqual(events, [
      [1.25, 'o', 'hello\r\n$ '],
      [1.752, 'r', '120x40'],
      [1.852, 'm', 'oom-kill'],
      [1.853, 'm', 'pids-limit'],
      [3.087, 'o', '"quoted" \\ \u0007\n'],
    ]);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]![0] >= events[i - 1]![0], 'times never go back');
    for (const [t] of events) assert.ok(/^\d+(\.\d{1,6})?$/.test(String(t)), `${t} has at most 6 decimals`);

    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, ID_A)).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, ID_A, '0.cast')).mode & 0o777, 0o600);
    assert.equal(rec.bytes, statSync(join(dir, ID_A, '0.cast')).size);
    await recordings.close();
  });

  it('keeps a UTF-8 character split across chunks whole, and turns invalid bytes into U+FFFD', async () => {
    const c = clock();
    const recordings = new Recordings({ dir: tempDir(), maxBytes: 1 << 20, retentionMs: 60_000, now: c.now });
    const rec = recordings.open(ID_A, 1, { cols: 80, rows: 24, owner: OWNER });
    const euro = Buffer.from('€é', 'utf8'); // e2 82 ac c3 a9
    rec.output(euro.subarray(0, 1));
    c.advance(50); // separate events: the split must survive across them too
    rec.output(euro.subarray(1, 2));
    rec.output(euro.subarray(2, 4));
    c.advance(50);
    rec.output(Buffer.concat([euro.subarray(4), Buffer.from([0xff]), Buffer.from('ok')]));
    rec.output(Buffer.from([0xf0, 0x9f])); // a character the program never finishes
    rec.end();
    const { header, events } = await readCast(recordings, ID_A, 1);
    assert.equal(header.title, undefined);
    assert.equal(outputText(events), '€é\ufffdok\ufffd');
    await recordings.close();
  });

  it('caps the file: output past maxBytes stops with one recording-truncated marker, the file stays valid', async () => {
    const c = clock();
    const maxBytes = 2000;
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes, retentionMs: 60_000, now: c.now });
    const rec = recordings.open(ID_A, 2, { cols: 80, rows: 24, owner: OWNER });
    for (let i = 0; i < 200; i++) {
      rec.output(Buffer.from(`line ${i} with ünïcödé\n`));
      c.advance(10);
      if (i === 20) rec.marker('oom-kill');
    }
    assert.equal(rec.truncated, true);
    rec.marker('pids-limit');
    rec.resize(10, 10);
    rec.output(Buffer.from('more'));
    const { events } = await readCast(recordings, ID_A, 2);
    const size = statSync(join(dir, ID_A, '2.cast')).size;
    assert.ok(size <= maxBytes, `${size} <= ${maxBytes}`);
    assert.ok(size > maxBytes - 200, 'the cap is used, not left mostly empty');
    assert.equal(rec.bytes, size);
    assert.deepEqual(events.at(-1)?.slice(1), ['m', TRUNCATED_MARKER]);
    assert.equal(events.filter((e) => e[1] === 'm' && e[2] === TRUNCATED_MARKER).length, 1);
    assert.ok(events.some((e) => e[2] === 'oom-kill'));
    assert.ok(
      !events.some((e) => e[2] === 'pids-limit' || e[1] === 'r'),
      'markers and resizes after the cap are dropped',
    );
    assert.ok(outputText(events).startsWith('line 0 with ünïcödé\nline 1'));
    assert.deepEqual(
      recordings.list(ID_A).map((r) => [r.terminalId, r.truncated, r.bytes]),
      [[2, true, size]],
    );
    await recordings.close();
  });

  it('keeps a cap below the header and marker valid: header and marker only', async () => {
    const recordings = new Recordings({ dir: tempDir(), maxBytes: 10, retentionMs: 60_000 });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    rec.output(Buffer.from('x'.repeat(100)));
    const { events } = await readCast(recordings, ID_A, 0);
    assert.equal(rec.truncated, true);
    assert.deepEqual(
      events.map((e) => e.slice(1)),
      [['m', TRUNCATED_MARKER]],
    );
    await recordings.close();
  });

  it('records a 20 MB flood of small chunks in few writes, quickly', async () => {
    const dir = tempDir();
    const total = 20 * 1024 * 1024;
    const chunk = Buffer.from('y\n'.repeat(256)); // 512 bytes, a small pty read
    let writes = 0;
    await withFileHandleWrites(
      (write) => {
        writes++;
        return write();
      },
      async () => {
        const recordings = new Recordings({ dir, maxBytes: 64 * 1024 * 1024, retentionMs: 60_000 });
        const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
        const started = performance.now();
        for (let sent = 0; sent < total; sent += chunk.length) rec.output(chunk);
        rec.end();
        await recordings.castPath(ID_A, 0);
        const elapsedMs = performance.now() - started;
        await recordings.close();
        assert.ok(elapsedMs < 5000, `took ${elapsedMs.toFixed(0)} ms`);
      },
    );
    const size = statSync(join(dir, ID_A, '0.cast')).size;
    assert.ok(size > total, 'everything is recorded');
    // One write per 64 KiB at most (plus the index), never one per read (40960 reads here).
    assert.ok(writes <= Math.ceil(size / (64 * 1024)) + 10, `${writes} writes for ${size} bytes`);
    const text = readFileSync(join(dir, ID_A, '0.cast'), 'utf8');
    let recorded = 0;
    for (const line of text.split('\n').slice(1)) if (line) recorded += (JSON.parse(line) as Event)[2].length;
    assert.equal(recorded, total);
  });

  it('writes held output after ~1 s on its own, and castPath flushes at once', async () => {
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000 });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    const path = join(dir, ID_A, '0.cast');
    // The file is created asynchronously, header first.
    for (let i = 0; i < 500 && !(existsSync(path) && readFileSync(path, 'utf8').includes('\n')); i++) await sleep(10);
    rec.output(Buffer.from('typed'));
    assert.ok(!readFileSync(path, 'utf8').includes('typed'), 'held, not written per read');
    // The batch timer writes it ~1 s later (longer on a loaded machine).
    for (let i = 0; i < 600 && !readFileSync(path, 'utf8').includes('typed'); i++) await sleep(10);
    assert.ok(readFileSync(path, 'utf8').includes('typed'), 'the batch timer wrote it');
    rec.output(Buffer.from('again'));
    assert.equal(await recordings.castPath(ID_A, 0), path);
    assert.ok(readFileSync(path, 'utf8').includes('again'));
    await recordings.close();
  });

  it('lists and finds recordings with their owner, open and ended', async () => {
    const c = clock();
    const recordings = new Recordings({ dir: tempDir(), maxBytes: 1 << 20, retentionMs: 60_000, now: c.now });
    const a0 = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    recordings.open(ID_A, 1, { cols: 80, rows: 24, owner: OWNER });
    recordings.open(ID_B, 0, { cols: 80, rows: 24, owner: { sessionId: 's2', classId: null, studentId: null } });
    c.advance(5000);
    a0.end();
    const listed = recordings.list(ID_A);
    assert.deepEqual(
      listed.map((r) => [r.containerId, r.terminalId, r.startedAt, r.endedAt, r.owner]),
      [
        [ID_A, 0, '2025-01-02T03:04:05.250Z', '2025-01-02T03:04:10.250Z', OWNER],
        [ID_A, 1, '2025-01-02T03:04:05.250Z', null, OWNER],
      ],
    );
    assert.ok(!('studentId' in listed[0]!));
    assert.deepEqual(
      recordings.find((owner) => owner.classId === 'c1').map((r) => `${r.containerId}/${r.terminalId}`),
      [`${ID_A}/0`, `${ID_A}/1`],
    );
    assert.deepEqual(recordings.list(ID_B.replace('b1', 'c1')), []);
    await recordings.close();
  });

  it('keeps the stats samples beside the recording, capped', async () => {
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1000, retentionMs: 60_000 });
    recordings.sample(ID_A, sample(1)); // no recording yet: not kept
    recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    for (let i = 2; i < 50; i++) recordings.sample(ID_A, sample(i));
    const samples = await recordings.readStats(ID_A);
    assert.ok(samples.length > 2 && samples.length < 48, `${samples.length} samples fit`);
    assert.deepEqual(samples[0], sample(2));
    assert.deepEqual(
      samples.map((s) => s.t),
      samples.map((_, i) => i + 2),
    );
    assert.ok(statSync(join(dir, ID_A, 'stats.jsonl')).size <= 1000);
    assert.equal(statSync(join(dir, ID_A, 'stats.jsonl')).mode & 0o777, 0o600);
    assert.deepEqual(await recordings.readStats(ID_B), []);
    await recordings.close();
  });

  it('writes an index with the owner, times and sizes', async () => {
    const c = clock();
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, now: c.now });
    const rec = recordings.open(ID_A, 3, { cols: 80, rows: 24, owner: OWNER });
    rec.output(Buffer.from('hi'));
    rec.end();
    recordings.expireAt(ID_A, c.now() + 60_000);
    await recordings.close();
    const index = JSON.parse(readFileSync(join(dir, ID_A, 'index.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(index.owner, OWNER);
    assert.equal(index.expiresAt, new Date(c.now() + 60_000).toISOString());
    assert.deepEqual(index.terminals, [
      {
        terminalId: 3,
        startedAt: '2025-01-02T03:04:05.250Z',
        endedAt: '2025-01-02T03:04:05.250Z',
        bytes: rec.bytes,
        truncated: false,
        owner: OWNER,
      },
    ]);
    assert.equal(statSync(join(dir, ID_A, 'index.json')).mode & 0o777, 0o600);
  });

  it('writes the index once for the changes of a second, and not for a removed container', async () => {
    const c = clock(Date.now());
    const dir = tempDir();
    const log = logger();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, now: c.now, logger: log });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    rec.end();
    recordings.expireAt(ID_A, c.now() + 60_000);
    recordings.open(ID_B, 0, { cols: 80, rows: 24, owner: OWNER }).end();
    recordings.expireAt(ID_B, c.now() - 1);
    await recordings.sweep(); // ID_B is due: removed before its index was written
    await sleep(300);
    assert.equal(existsSync(join(dir, ID_A, 'index.json')), false, 'the index waits for the batch');
    assert.equal(existsSync(join(dir, ID_B)), false);
    for (let i = 0; i < 40 && !existsSync(join(dir, ID_A, 'index.json')); i++) await sleep(50);
    const index = JSON.parse(readFileSync(join(dir, ID_A, 'index.json'), 'utf8')) as {
      expiresAt: string;
      terminals: { endedAt: string | null }[];
    };
    assert.equal(index.expiresAt, new Date(c.now() + 60_000).toISOString());
    assert.equal(index.terminals[0]?.endedAt, new Date(c.now()).toISOString());
    await sleep(1200);
    assert.equal(existsSync(join(dir, ID_B)), false, 'no timer writes into a removed directory');
    assert.deepEqual(log.warnings, []);
    await recordings.close();
  });
});

describe('expiry and sweep', () => {
  it('deletes what is due and nothing else', async () => {
    const c = clock(Date.now());
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, now: c.now });
    const a = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    recordings.open(ID_B, 0, { cols: 80, rows: 24, owner: OWNER });
    const idC = 'c'.repeat(64);
    recordings.open(idC, 0, { cols: 80, rows: 24, owner: OWNER }).output(Buffer.from('x'));
    recordings.sample(ID_A, sample(1));
    a.output(Buffer.from('bye'));
    recordings.expireAt(ID_A, c.now() + 1000);
    recordings.expireAt(ID_B, c.now() + 10_000);
    await recordings.castPath(ID_A, 0);
    await recordings.sweep();
    assert.equal(recordings.list(ID_A).length, 1, 'not due yet');
    c.advance(1000);
    await recordings.sweep();
    assert.deepEqual(recordings.list(ID_A), []);
    assert.equal(await recordings.castPath(ID_A, 0), null);
    assert.deepEqual(await recordings.readStats(ID_A), []);
    assert.ok(!existsSync(join(dir, ID_A)), 'its directory is gone');
    assert.ok(existsSync(join(dir, ID_B, '0.cast')));
    assert.ok(existsSync(join(dir, idC, '0.cast')), 'no expiry set: kept');
    assert.equal(recordings.list(ID_B).length, 1);
    a.output(Buffer.from('after removal')); // an ended recording ignores it
    // Recorded again after its removal: a fresh directory.
    recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER }).output(Buffer.from('new'));
    const { events } = await readCast(recordings, ID_A, 0);
    assert.equal(outputText(events), 'new');
    await recordings.close();
  });

  it("sweeps an earlier run's leftovers by their newest mtime + retention, or their index's expiry", async () => {
    const nowMs = Date.now();
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    const old = join(dir, 'dead00000000');
    const recent = join(dir, 'beef00000000');
    const oldDirFreshFile = join(dir, 'feed00000000');
    const expiredByIndex = join(dir, 'cafe00000000');
    for (const d of [old, recent, oldDirFreshFile, expiredByIndex]) {
      mkdirSync(d);
      writeFileSync(join(d, '0.cast'), '{"version":2}\n');
    }
    writeFileSync(join(expiredByIndex, 'index.json'), JSON.stringify({ expiresAt: new Date(nowMs - 1).toISOString() }));
    const notOurs = join(dir, 'lost+found');
    mkdirSync(notOurs);
    const stale = (nowMs - 2 * 3_600_000) / 1000;
    for (const path of [old, join(old, '0.cast'), notOurs, oldDirFreshFile]) utimesSync(path, stale, stale);
    utimesSync(join(expiredByIndex, '0.cast'), nowMs / 1000, nowMs / 1000);

    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 3_600_000, now: () => nowMs });
    await recordings.sweep();
    assert.ok(!existsSync(old), 'untouched for longer than the retention: deleted');
    assert.ok(!existsSync(expiredByIndex), 'its index said it expired');
    assert.ok(existsSync(recent), 'recent: kept');
    assert.ok(existsSync(oldDirFreshFile), 'a file written recently keeps it');
    assert.ok(existsSync(notOurs), 'a name this module does not make is left alone');
    await recordings.close();
  });
});

describe('refusals and failures', () => {
  it('refuses container and terminal ids that are not ours before joining any path', async () => {
    const dir = tempDir();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000 });
    const init = { cols: 80, rows: 24, owner: OWNER };
    for (const id of ['../../etc', 'A1B2C3D4E5F6', 'abc', 'a'.repeat(65), `${ID_A}/..`, '', `${ID_A}\n`]) {
      assert.throws(
        () => recordings.open(id, 0, init),
        (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT',
        id,
      );
      await assert.rejects(
        recordings.castPath(id, 0),
        (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT',
      );
    }
    for (const tid of [-1, 1.5, 1_000_000, Number.NaN, Infinity, '0' as unknown as number]) {
      assert.throws(
        () => recordings.open(ID_A, tid, init),
        (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT',
      );
      await assert.rejects(
        recordings.castPath(ID_A, tid),
        (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT',
      );
    }
    assert.equal(await recordings.castPath(ID_A, 999_999), null, 'valid but unknown');
    await recordings.close();
  });

  it('never throws when the directory cannot be written: the recording is disabled and logged once', async () => {
    const root = tempDir();
    mkdirSync(root, { recursive: true });
    const dir = join(root, 'blocked');
    writeFileSync(dir, 'a file where the directory should be');
    const log = logger();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, logger: log });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    rec.output(Buffer.from('lost'));
    rec.marker('oom-kill');
    recordings.sample(ID_A, sample(1));
    assert.equal(await recordings.castPath(ID_A, 0), null);
    rec.output(Buffer.from('still fine'));
    rec.resize(100, 50);
    rec.end();
    assert.deepEqual(await recordings.readStats(ID_A), []);
    await recordings.sweep();
    await recordings.close();
    const disabled = log.warnings.filter((w) => w.msg.startsWith('recording disabled'));
    assert.equal(disabled.length, 1, JSON.stringify(log.warnings));
  });

  it('never throws when the container directory is removed under it', async () => {
    const dir = tempDir();
    const log = logger();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, logger: log });
    const first = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    await recordings.castPath(ID_A, 0);
    rmSync(join(dir, ID_A), { recursive: true, force: true });
    first.output(Buffer.from('into an unlinked file'));
    const second = recordings.open(ID_A, 1, { cols: 80, rows: 24, owner: OWNER });
    second.output(Buffer.from('x'));
    assert.equal(await recordings.castPath(ID_A, 1), null, 'its file could not be made');
    second.end();
    first.end();
    await recordings.close();
    assert.equal(log.warnings.filter((w) => w.msg.startsWith('recording disabled')).length, 1);
  });

  it('never throws when a write fails (ENOSPC): the recording stops and is logged once', async () => {
    const dir = tempDir();
    const log = logger();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, logger: log });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    await recordings.castPath(ID_A, 0);
    await withFileHandleWrites(
      () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })),
      async () => {
        for (let i = 0; i < 3; i++) {
          rec.output(Buffer.alloc(100 * 1024, 'z'));
          await recordings.castPath(ID_A, 0);
        }
      },
    );
    rec.output(Buffer.from('after'));
    rec.marker('oom-kill');
    rec.end();
    await recordings.close();
    const disabled = log.warnings.filter((w) => w.msg.startsWith('recording disabled'));
    assert.equal(disabled.length, 1);
    assert.equal((disabled[0]!.obj as { code?: string }).code, 'ENOSPC');
    const text = readFileSync(join(dir, ID_A, '0.cast'), 'utf8');
    assert.ok(!text.includes('after'));
  });

  it('does not follow a symlink planted where a recording goes', async () => {
    const dir = tempDir();
    const target = join(dir, '..', 'target');
    writeFileSync(target, 'precious');
    mkdirSync(join(dir, ID_A), { recursive: true });
    await fsp.symlink(target, join(dir, ID_A, '0.cast'));
    const log = logger();
    const recordings = new Recordings({ dir, maxBytes: 1 << 20, retentionMs: 60_000, logger: log });
    const rec = recordings.open(ID_A, 0, { cols: 80, rows: 24, owner: OWNER });
    rec.output(Buffer.from('overwrite?'));
    assert.equal(await recordings.castPath(ID_A, 0), null);
    await recordings.close();
    assert.equal(readFileSync(target, 'utf8'), 'precious');
    assert.equal((log.warnings[0]?.obj as { code?: string }).code, 'ELOOP');
  });
});
