// Files in and out of real containers: the HTTP routes (upload, download, directory tar,
// list) and `mdocker cp`, with paths resolved inside the container's root whatever its
// symlinks say, even while they change.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  symlinkSync,
} from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { extract, pack } from 'tar-stream';
import type { FileEntryJson } from '../../src/protocol/index.js';
import { cliPath, containerCgroups, launcherProcesses, mdocker, rootOnly, stateDirs, waitFor } from './helpers.js';
import { Client } from './playground-client.js';
import { startRealServer, type RealServer } from './real-server.js';

const skip = rootOnly();
let real: RealServer;
let owner: Client;
let id: string;

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request with a raw body (a Buffer, or chunks sent one after another without a length). */
function raw(
  client: Client,
  method: string,
  path: string,
  body?: Buffer | Buffer[],
  headers: Record<string, string> = {},
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      new URL(path, client.base),
      {
        method,
        headers: {
          ...(client.cookie ? { cookie: client.cookie } : {}),
          ...(Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {}),
          'content-type': 'application/octet-stream',
          ...headers,
        },
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    // The server answers 413 and closes while a too-large body is still being sent.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (Array.isArray(body)) {
      void (async () => {
        for (const chunk of body) {
          if (req.destroyed) return;
          if (!req.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = () => {
                req.off('drain', done).off('close', done);
                resolve();
              };
              req.on('drain', done).on('close', done);
            });
          }
        }
        req.end();
      })();
    } else {
      req.end(body);
    }
  });
}

const filesUrl = (container: string, path: string, extra = '') =>
  `/api/containers/${container}/files?path=${encodeURIComponent(path)}${extra}`;

async function exec(cmd: string[]): Promise<string> {
  const reply = await owner.request('POST', `/api/containers/${id}/exec`, { cmd, timeoutMs: 20_000 });
  assert.equal(reply.status, 200, reply.text);
  const result = reply.body as { exitCode: number; stdout: string; stderr: string };
  assert.equal(result.exitCode, 0, `${cmd.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function untar(data: Buffer): Promise<Map<string, { type: string; body: string; linkname: string }>> {
  const entries = new Map<string, { type: string; body: string; linkname: string }>();
  const parser = extract();
  parser.end(data);
  for await (const entry of parser) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.set(entry.header.name, {
      type: entry.header.type,
      body: Buffer.concat(chunks).toString(),
      linkname: entry.header.linkname ?? '',
    });
  }
  return entries;
}

describe('files in and out of a container over HTTP', { skip }, () => {
  before(async () => {
    real = await startRealServer('files-test', { maxUpload: '6m', maxDownload: '8m' });
    owner = new Client(real.base);
    id = (await owner.create()).id;
  });
  after(() => real?.close());

  it('uploads 5 MiB of random bytes, owned by the container root, and downloads them back equal', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const put = await raw(owner, 'PUT', filesUrl(id, '/tmp/upload.bin'), data);
    assert.equal(put.status, 201, put.body.toString());
    const entry = JSON.parse(put.body.toString()) as FileEntryJson;
    assert.deepEqual(
      { name: entry.name, type: entry.type, size: entry.size, mode: entry.mode },
      {
        name: 'upload.bin',
        type: 'file',
        size: data.length,
        mode: 0o644,
      },
    );
    assert.equal((await exec(['stat', '-c', '%u:%g %a %s', '/tmp/upload.bin'])).trim(), `0:0 644 ${data.length}`);
    const got = await raw(owner, 'GET', filesUrl(id, '/tmp/upload.bin'));
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.equal(got.headers['content-length'], String(data.length));
    assert.match(String(got.headers['content-disposition']), /filename="upload.bin"/);
    assert.ok(got.body.equals(data), 'the bytes came back equal');

    // Into the overlay's writable layer too, replacing an image file and keeping its mode.
    const again = await raw(owner, 'PUT', filesUrl(id, '/etc/motd'), Buffer.from('hello\n'));
    assert.equal(again.status, 201, again.body.toString());
    const replaced = await raw(owner, 'PUT', filesUrl(id, '/etc/group'), Buffer.from('root:x:0:\n'), {
      'content-type': 'application/json',
    });
    assert.equal(replaced.status, 200, replaced.body.toString());
    assert.equal(await exec(['cat', '/etc/motd', '/etc/group']), 'hello\nroot:x:0:\n');
  });

  it("resolves ../../../etc/passwd inside the container: the image's passwd, never the host's", async () => {
    const inside = await exec(['cat', '/etc/passwd']);
    const host = readFileSync('/etc/passwd', 'utf8');
    assert.notEqual(inside, host);
    for (const path of ['../../../etc/passwd', '/../../../../etc/passwd', 'etc/../../etc/passwd']) {
      const got = await raw(owner, 'GET', filesUrl(id, path));
      assert.equal(got.status, 200, path);
      assert.equal(got.body.toString(), inside, path);
    }
    // A magic link (/proc/PID/root) is refused, and kernel filesystems are not served.
    assert.equal((await raw(owner, 'GET', filesUrl(id, '/proc/1/root/etc/passwd'))).status, 400);
    assert.equal((await raw(owner, 'GET', filesUrl(id, '/proc/self/status'))).status, 404);
    assert.equal((await raw(owner, 'GET', filesUrl(id, '/proc/kallsyms'))).status, 403);
    assert.equal((await raw(owner, 'GET', filesUrl(id, '/dev/null'))).status, 400);
  });

  it("reads a symlink to /etc/shadow inside the container, and never the host's shadow", async () => {
    await exec(['sh', '-c', 'ln -s /etc/shadow /tmp/abs-link && ln -s ../../../../../../etc/shadow /tmp/rel-link']);
    for (const link of ['/tmp/abs-link', '/tmp/rel-link']) {
      assert.equal((await raw(owner, 'GET', filesUrl(id, link))).status, 404, `${link} before the container has one`);
    }
    await exec(['sh', '-c', 'echo container-shadow > /etc/shadow']);
    for (const link of ['/tmp/abs-link', '/tmp/rel-link']) {
      const got = await raw(owner, 'GET', filesUrl(id, link));
      assert.equal(got.status, 200, link);
      assert.equal(got.body.toString(), 'container-shadow\n', link);
    }
    // Written through: the link is replaced by the file, the container's shadow untouched.
    const put = await raw(owner, 'PUT', filesUrl(id, '/tmp/abs-link'), Buffer.from('replaced\n'));
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(await exec(['cat', '/tmp/abs-link', '/etc/shadow']), 'replaced\ncontainer-shadow\n');
  });

  it('keeps uploads inside while the container swaps the target and its directory for symlinks to a host path', async () => {
    const hostDir = mkdtempSync('/tmp/mdocker-files-race-');
    try {
      // Inside, these names lead nowhere (the container has no such directory); on the host
      // they would land in hostDir.
      await exec([
        'sh',
        '-c',
        `mkdir -p /tmp/race && (while :; do ` +
          `ln -sfn ${hostDir} /tmp/race/dir; rm -rf /tmp/race/dir; mkdir /tmp/race/dir; rm -rf /tmp/race/dir; ` +
          `ln -sfn ${hostDir}/victim /tmp/race/file; rm -f /tmp/race/file; done) >/dev/null 2>&1 & echo $! > /tmp/race.pid`,
      ]);
      const statuses = new Set<number>();
      for (let i = 0; i < 150; i++) {
        const file = await raw(owner, 'PUT', filesUrl(id, '/tmp/race/file'), Buffer.from(`upload ${i}\n`));
        const inDir = await raw(owner, 'PUT', filesUrl(id, '/tmp/race/dir/victim'), Buffer.from(`upload ${i}\n`));
        statuses.add(file.status).add(inDir.status);
        assert.ok([200, 201, 404, 409].includes(file.status), file.body.toString());
        assert.ok([200, 201, 404, 409].includes(inDir.status), inDir.body.toString());
      }
      assert.ok(statuses.has(200) || statuses.has(201), 'some uploads landed inside');
      assert.deepEqual(readdirSync(hostDir), [], 'nothing was written on the host');
      await exec(['sh', '-c', 'kill $(cat /tmp/race.pid) && rm -rf /tmp/race']);
    } finally {
      rmSync(hostDir, { recursive: true, force: true });
    }
  });

  it('answers 413 naming the cap for an upload over --max-upload, and leaves nothing behind', async () => {
    const big = randomBytes(7 * 1024 * 1024);
    const declared = await raw(owner, 'PUT', filesUrl(id, '/tmp/too-big'), big);
    assert.equal(declared.status, 413);
    const error = (JSON.parse(declared.body.toString()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'TOO_LARGE');
    assert.match(error.message, /--max-upload 6 ?MiB/);
    // Without a length the cap is found while streaming.
    const chunks = Array.from({ length: 112 }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536));
    const streamed = await raw(owner, 'PUT', filesUrl(id, '/tmp/too-big'), chunks);
    assert.equal(streamed.status, 413, streamed.body.toString());
    const listed = await owner.request('GET', filesUrl(id, '/tmp', '&list=1'));
    const names = (listed.body as FileEntryJson[]).map((e) => e.name);
    assert.ok(!names.includes('too-big'), names.join(' '));
    assert.ok(!names.some((name) => name.startsWith('.mdocker-upload-')), names.join(' '));
  });

  it("answers 404 for another session's container, reading, listing or writing", async () => {
    const stranger = new Client(real.base);
    await stranger.request('GET', '/healthz');
    assert.equal((await raw(stranger, 'GET', filesUrl(id, '/etc/passwd'))).status, 404);
    assert.equal((await raw(stranger, 'GET', filesUrl(id, '/etc', '&list=1'))).status, 404);
    const put = await raw(stranger, 'PUT', filesUrl(id, '/tmp/planted'), Buffer.from('x'));
    assert.equal(put.status, 404);
    assert.equal((await raw(owner, 'GET', filesUrl(id, '/tmp/planted'))).status, 404);
  });

  it('puts an upload or an exec made the moment a container is created inside it, never on the host', async () => {
    // The container's init stands in a copy of the host's mounts until its root is built:
    // nothing may reach it before then.
    const marker = `mdocker-early-${randomBytes(6).toString('hex')}`;
    let client = new Client(real.base);
    try {
      for (let i = 0; i < 8; i++) {
        // A session may create 10 a minute.
        if (i % 4 === 0) client = new Client(real.base);
        const container = (await client.create()).id;
        const [put, ran] = await Promise.all([
          raw(client, 'PUT', filesUrl(container, `/tmp/${marker}-put-${i}`), Buffer.from('early\n')),
          client.request('POST', `/api/containers/${container}/exec`, {
            cmd: ['sh', '-c', `touch /tmp/${marker}-exec-${i} && cat /tmp/${marker}-exec-${i}`],
            timeoutMs: 20_000,
          }),
        ]);
        assert.equal(put.status, 201, put.body.toString());
        assert.equal(ran.status, 200, ran.text);
        const listed = await client.request('GET', filesUrl(container, '/tmp', '&list=1'));
        const names = (listed.body as FileEntryJson[]).map((e) => e.name);
        assert.ok(names.includes(`${marker}-put-${i}`), names.join(' '));
        assert.ok(names.includes(`${marker}-exec-${i}`), names.join(' '));
        assert.equal((await client.request('DELETE', `/api/containers/${container}`)).status, 204);
      }
    } finally {
      const onHost = readdirSync('/tmp').filter((name) => name.startsWith(marker));
      for (const name of onHost) rmSync(join('/tmp', name), { force: true });
      assert.deepEqual(onHost, [], "nothing was written in the host's /tmp");
    }
  });

  it("lets a class's teacher read a student's container, never write it; another student gets 404", async () => {
    // A token-less loopback server: the local user is the teacher.
    const teacher = new Client(real.base);
    await teacher.request('GET', '/healthz');
    const created = await teacher.request('POST', '/api/classes', { name: 'files' });
    assert.equal(created.status, 201, created.text);
    const { id: classId, joinCode } = created.body as { id: string; joinCode: string };
    try {
      const [student, other] = [new Client(real.base), new Client(real.base)];
      for (const [i, client] of [student, other].entries()) {
        const joined = await client.request('POST', '/api/join', { code: joinCode, name: `student ${i}` });
        assert.equal(joined.status, 201, joined.text);
      }
      const container = (await student.create()).id;
      const put = await raw(student, 'PUT', filesUrl(container, '/tmp/homework.txt'), Buffer.from('42\n'));
      assert.equal(put.status, 201, put.body.toString());
      const read = await raw(teacher, 'GET', filesUrl(container, '/tmp/homework.txt'));
      assert.equal(read.status, 200, read.body.toString());
      assert.equal(read.body.toString(), '42\n');
      assert.equal((await raw(teacher, 'GET', filesUrl(container, '/tmp', '&list=1'))).status, 200);
      assert.equal(
        (await raw(teacher, 'PUT', filesUrl(container, '/tmp/homework.txt'), Buffer.from('0\n'))).status,
        404,
      );
      assert.equal((await raw(other, 'GET', filesUrl(container, '/tmp/homework.txt'))).status, 404);
      assert.equal((await raw(student, 'GET', filesUrl(container, '/tmp/homework.txt'))).body.toString(), '42\n');
    } finally {
      assert.equal((await teacher.request('DELETE', `/api/classes/${classId}`)).status, 204);
    }
  });

  it('lists a directory: name, type, size, mode and mtime of each entry, symlinks as themselves', async () => {
    await exec([
      'sh',
      '-c',
      'mkdir -p /tmp/list/sub && printf abc > /tmp/list/f && chmod 600 /tmp/list/f && ln -s f /tmp/list/l',
    ]);
    const listed = await owner.request('GET', filesUrl(id, '/tmp/list', '&list=1'));
    assert.equal(listed.status, 200, listed.text);
    const entries = listed.body as FileEntryJson[];
    assert.deepEqual(
      entries.map(({ name, type, mode }) => ({ name, type, mode })),
      [
        { name: 'f', type: 'file', mode: 0o600 },
        { name: 'l', type: 'symlink', mode: 0o777 },
        { name: 'sub', type: 'dir', mode: 0o755 },
      ],
    );
    assert.equal(entries[0]!.size, 3);
    assert.ok(Math.abs(Date.parse(entries[0]!.mtime) - Date.now()) < 60_000, entries[0]!.mtime);
    assert.equal((await owner.request('GET', filesUrl(id, '/tmp/list/f', '&list=1'))).status, 400);
    assert.equal((await owner.request('GET', filesUrl(id, '/nowhere', '&list=1'))).status, 404);
    const bad = await owner.request('GET', `/api/containers/${id}/files?path=/tmp&mode=x`);
    assert.equal(bad.status, 400);
    assert.match((bad.body as { error: { message: string } }).error.message, /unknown query parameter/);
    assert.equal((await owner.request('GET', `/api/containers/${id}/files`)).status, 400);
  });

  it('downloads a directory as a tar of its files, directories and symlinks', async () => {
    await exec([
      'sh',
      '-c',
      'mkdir -p /tmp/tree/a && echo one > /tmp/tree/a/one && echo two > /tmp/tree/two && ln -s a/one /tmp/tree/link',
    ]);
    const got = await raw(owner, 'GET', filesUrl(id, '/tmp/tree'));
    assert.equal(got.status, 200, got.body.toString());
    assert.equal(got.headers['content-type'], 'application/x-tar');
    assert.match(String(got.headers['content-disposition']), /filename="tree.tar"/);
    const entries = await untar(got.body);
    assert.deepEqual([...entries.keys()].sort(), ['tree', 'tree/a', 'tree/a/one', 'tree/link', 'tree/two']);
    assert.equal(entries.get('tree/a/one')?.body, 'one\n');
    assert.equal(entries.get('tree/two')?.body, 'two\n');
    assert.deepEqual([entries.get('tree/link')?.type, entries.get('tree/link')?.linkname], ['symlink', 'a/one']);
  });

  it('closes every fd it opened when a client leaves in the middle of a file or a tar', async () => {
    await exec([
      'sh',
      '-c',
      'mkdir -p /tmp/big/a/b && for f in /tmp/big/1 /tmp/big/a/2 /tmp/big/a/b/3; do head -c 2097152 /dev/urandom > $f; done',
    ]);
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = openFds();
    for (const path of ['/tmp/big', '/tmp/big/1']) {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(
          new URL(filesUrl(id, path), owner.base),
          { headers: { cookie: owner.cookie } },
          (res) => {
            assert.equal(res.statusCode, 200);
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', () => undefined);
        req.on('close', () => resolve());
        setTimeout(() => reject(new Error('no answer')), 10_000).unref();
        req.end();
      });
    }
    await waitFor('the fds of the aborted downloads closed', () => openFds() <= before);
    await exec(['rm', '-rf', '/tmp/big']);
  });

  it('stops the download of a file that grows forever at its size when opened', async () => {
    await exec(['sh', '-c', '(while :; do echo growing; done > /tmp/grow) >/dev/null 2>&1 & echo $! > /tmp/grow.pid']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const got = await raw(owner, 'GET', filesUrl(id, '/tmp/grow'));
      assert.ok(got.status === 200 || got.status === 403, `${got.status}`);
      if (got.status === 200) {
        assert.equal(String(got.body.length), got.headers['content-length']);
        assert.ok(got.body.length <= 8 * 1024 * 1024);
      } else {
        assert.match(got.body.toString(), /--max-download/);
      }
    } finally {
      await exec(['sh', '-c', 'kill $(cat /tmp/grow.pid) && rm -f /tmp/grow']);
    }
  });
});

/** The CLI with binary stdin and stdout. */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: Buffer,
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

const MiB = 1024 * 1024;

/** A memory cgroup file of a container: the directory among its cgroups (v1: one per hierarchy) that has it. */
function containerMemoryFile(container: string, v1: string, v2: string): string {
  for (const dir of containerCgroups([container])) {
    for (const name of [v1, v2]) if (existsSync(join(dir, name))) return join(dir, name);
  }
  assert.fail(`no memory cgroup of ${container} has ${v1} or ${v2}`);
}

/** Bytes of tmpfs charged to this process's own memory cgroup, its children's left out (v1's local shmem; on v2 it is a leaf). */
function ownShmemBytes(): number {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v1 = lines.find((line) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(line));
  const dir = v1
    ? join('/sys/fs/cgroup/memory', v1.split(':')[2] ?? '/')
    : join('/sys/fs/cgroup', lines[0]!.split(':')[2] ?? '/');
  const stat = readFileSync(join(dir, 'memory.stat'), 'utf8');
  return Number(/^shmem (\d+)$/m.exec(stat)?.[1] ?? Number.NaN);
}

describe("uploads are charged to the container's memory", { skip }, () => {
  let memServer: RealServer;
  let user: Client;
  let container: string;

  before(async () => {
    memServer = await startRealServer('files-memory', { maxUpload: '200m' });
    user = new Client(memServer.base);
    container = (await user.create({ memory: '96m' })).id;
  });
  after(() => memServer?.close());

  const usage = () =>
    Number(readFileSync(containerMemoryFile(container, 'memory.usage_in_bytes', 'memory.current'), 'utf8'));

  it("charges 40 MiB written into its tmpfs to the container's memory cgroup, not the server's", async () => {
    const containerBefore = usage();
    const serverBefore = ownShmemBytes();
    const put = await raw(user, 'PUT', filesUrl(container, '/tmp/forty.bin'), Buffer.alloc(40 * MiB, 0x61));
    assert.equal(put.status, 201, put.body.toString());
    const grown = usage() - containerBefore;
    assert.ok(grown >= 35 * MiB, `the container's memory grew by ${grown} bytes`);
    const serverGrown = ownShmemBytes() - serverBefore;
    assert.ok(serverGrown < 8 * MiB, `the server's own cgroup holds ${serverGrown} more bytes of tmpfs`);
    const reply = await user.request('POST', `/api/containers/${container}/exec`, {
      cmd: ['rm', '/tmp/forty.bin'],
      timeoutMs: 20_000,
    });
    assert.equal(reply.status, 200, reply.text);
  });

  it("fails an upload larger than the container's memory with a JSON error, leaving no temporary file and the container running", async () => {
    const put = await raw(user, 'PUT', filesUrl(container, '/tmp/too-much.bin'), Buffer.alloc(150 * MiB, 0x62));
    assert.equal(put.status, 403, put.body.toString());
    const error = (JSON.parse(put.body.toString()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'LIMIT_EXCEEDED');
    assert.match(error.message, /memory limit/);
    const listed = await user.request('GET', filesUrl(container, '/tmp', '&list=1'));
    assert.equal(listed.status, 200, listed.text);
    const names = (listed.body as FileEntryJson[]).map((e) => e.name);
    assert.ok(!names.includes('too-much.bin'), names.join(' '));
    assert.ok(!names.some((name) => name.startsWith('.mdocker-upload-')), names.join(' '));
    // The OOM killer took the copier, not the container's processes.
    const view = await user.request('GET', `/api/containers/${container}`);
    assert.equal((view.body as { state: string }).state, 'running', view.text);
    assert.ok(usage() < 40 * MiB, `the container still holds ${usage()} bytes`);
  });

  it('refuses a write when the cgroup to join is gone (CONFLICT), and stops at its own cap (TOO_LARGE)', async () => {
    const { writeInCgroups } = await import('../../src/runtime/copier.js');
    const dir = mkdtempSync('/tmp/mdocker-copier-test-');
    const fd = openSync(join(dir, 'target'), 'w');
    try {
      const once = async function* (data: Buffer) {
        yield data;
      };
      await assert.rejects(
        writeInCgroups(fd, ['/sys/fs/cgroup/mdocker-no-such-cgroup'], once(Buffer.from('hello'))),
        (err: Error & { code?: string }) => err.code === 'CONFLICT' && /is gone/.test(err.message),
      );
      await assert.rejects(
        writeInCgroups(fd, [], once(Buffer.from('hello')), 3),
        (err: Error & { code?: string }) => err.code === 'TOO_LARGE',
      );
      assert.equal(readFileSync(join(dir, 'target'), 'utf8'), '');
      await writeInCgroups(fd, [], once(Buffer.from('hello')), 5);
      assert.equal(readFileSync(join(dir, 'target'), 'utf8'), 'hello');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mdocker cp', { skip }, () => {
  let stateRoot: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let container: string;

  before(async () => {
    stateRoot = mkdtempSync('/run/mdocker-cp-test-');
    work = mkdtempSync('/tmp/mdocker-cp-test-');
    env = { MDOCKER_STATE_ROOT: stateRoot };
    const run = await mdocker(['run', '-d', '--name', 'cp-test', 'busybox', 'sleep', '600'], { env });
    assert.equal(run.code, 0, run.stderr);
    container = run.stdout.trim();
  });

  after(async () => {
    if (container) await mdocker(['rm', '-f', container], { env });
    if (container) {
      assert.deepEqual(stateDirs([container]), []);
      assert.deepEqual(containerCgroups([container]), []);
    }
    assert.deepEqual(
      launcherProcesses().filter((p) => p.includes(container)),
      [],
    );
    rmSync(work, { recursive: true, force: true });
    rmSync(stateRoot, { recursive: true, force: true });
  });

  it('copies a file into the container and back', async () => {
    const data = randomBytes(300_000);
    writeFileSync(join(work, 'data.bin'), data);
    const into = await cli(['cp', join(work, 'data.bin'), 'cp-test:/tmp/'], env);
    assert.equal(into.code, 0, into.stderr);
    const inside = await mdocker(['exec', 'cp-test', 'stat', '-c', '%u:%g %s', '/tmp/data.bin'], { env });
    assert.equal(inside.stdout.trim(), `0:0 ${data.length}`, `code ${inside.code}: ${inside.stderr}`);
    const back = await cli(['cp', 'cp-test:/tmp/data.bin', join(work, 'back.bin')], env);
    assert.equal(back.code, 0, back.stderr);
    assert.ok(readFileSync(join(work, 'back.bin')).equals(data));
    // Docker's rule: a path without a leading / is the container's from its root.
    const rel = await cli(['cp', 'cp-test:../../etc/passwd', join(work, 'passwd')], env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.notEqual(readFileSync(join(work, 'passwd'), 'utf8'), readFileSync('/etc/passwd', 'utf8'));
  });

  it('copies a directory both ways, its symlinks as symlinks', async () => {
    const src = join(work, 'tree');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub', 'f'), 'file\n');
    symlinkSync('sub/f', join(src, 'link'));
    const into = await cli(['cp', src, 'cp-test:/tmp'], env);
    assert.equal(into.code, 0, into.stderr);
    const listed = await mdocker(['exec', 'cp-test', 'sh', '-c', 'cat /tmp/tree/sub/f && readlink /tmp/tree/link'], {
      env,
    });
    assert.equal(listed.stdout, 'file\nsub/f\n', listed.stderr);
    const out = join(work, 'out');
    const back = await cli(['cp', 'cp-test:/tmp/tree', out], env);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(readFileSync(join(out, 'sub', 'f'), 'utf8'), 'file\n');
    assert.equal(readFileSync(join(out, 'link'), 'utf8'), 'file\n');
    // Into an existing directory: under its own name.
    const nested = await cli(['cp', 'cp-test:/tmp/tree', out], env);
    assert.equal(nested.code, 0, nested.stderr);
    assert.ok(existsSync(join(out, 'tree', 'sub', 'f')));
  });

  it('reads and writes a tar with -', async () => {
    const tarOut = await cli(['cp', 'cp-test:/etc', '-'], env);
    assert.equal(tarOut.code, 0, tarOut.stderr);
    const entries = await untar(tarOut.stdout);
    assert.equal(
      entries.get('etc/passwd')?.body,
      (await mdocker(['exec', 'cp-test', 'cat', '/etc/passwd'], { env })).stdout,
    );

    const archive = pack();
    archive.entry({ name: 'in/', type: 'directory', mode: 0o755 });
    archive.entry({ name: 'in/hello.txt', mode: 0o600 }, 'hello from a tar\n');
    archive.entry({ name: 'in/link', type: 'symlink', linkname: '/etc/shadow' });
    archive.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of archive) chunks.push(chunk as Buffer);
    const tarIn = await cli(['cp', '-', 'cp-test:/root'], env, Buffer.concat(chunks));
    assert.equal(tarIn.code, 0, tarIn.stderr);
    const inside = await mdocker(
      [
        'exec',
        'cp-test',
        'sh',
        '-c',
        'stat -c "%a %u" /root/in/hello.txt && cat /root/in/hello.txt && readlink /root/in/link',
      ],
      { env },
    );
    assert.equal(inside.stdout, '600 0\nhello from a tar\n/etc/shadow\n', inside.stderr);

    const evil = pack();
    evil.entry({ name: '../escape.txt' }, 'x');
    evil.finalize();
    const evilChunks: Buffer[] = [];
    for await (const chunk of evil) evilChunks.push(chunk as Buffer);
    const refused = await cli(['cp', '-', 'cp-test:/root'], env, Buffer.concat(evilChunks));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /^mdocker: tar entry "..\/escape.txt" leaves the destination\n$/);
  });

  it('says what is wrong in one line and exits non-zero on bad input', async () => {
    for (const [args, message] of [
      [['cp', '/a', '/b'], /must be a container path/],
      [['cp', 'cp-test:/nowhere', join(work, 'x')], /no such file or directory in the container: "\/nowhere"/],
      [['cp', 'no-such-container:/etc', join(work, 'x')], /no such container/],
      [['cp', ':/etc', join(work, 'x')], /missing container name/],
    ] as const) {
      const result = await cli([...args], env);
      assert.notEqual(result.code, 0, args.join(' '));
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });
});
