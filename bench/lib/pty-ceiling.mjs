// The pty's ceiling for the throughput command: the command on a host pty, read by a bare
// loop in this process (the addon's spawnPty, as the server opens its terminals, and a
// tty.ReadStream as the server reads them), with no screen, no WebSocket and no container.
// `head`, the process writing to the terminal, runs under `time`: its own CPU time per
// byte (mostly the kernel's tty layer) bounds what any reader can get, since it spends
// it whatever the reader does.
import { closeSync, existsSync, writeSync } from 'node:fs';
import tty from 'node:tty';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sleep, withTimeout } from './util.mjs';

/** `sh -c script` with PATH=`path` on a new host pty; bytes read and the rate. */
export async function measurePtyCeiling({ repo, script, path, timeoutMs }) {
  const { ptyCalls } = await import(pathToFileURL(join(repo, 'server/dist/src/runtime/native.js')).href);
  let exited;
  const exit = new Promise((resolve) => (exited = resolve));
  const sh =
    path
      .split(':')
      .map((dir) => join(dir, 'sh'))
      .find((file) => existsSync(file)) ?? '/bin/sh';
  const { pid, fd, slave } = ptyCalls().spawnPty(sh, [sh, '-c', script], [`PATH=${path}`], '/', 80, 24, () => exited());
  const stream = new tty.ReadStream(fd);
  let bytes = 0;
  let reads = 0;
  let lastDataAt = 0;
  let end = '';
  stream.on('data', (chunk) => {
    bytes += chunk.length;
    end = (end + chunk.toString('latin1')).slice(-512);
    reads++;
    lastDataAt = performance.now();
  });
  stream.on('error', () => undefined);
  const ended = new Promise((resolve) => stream.on('close', resolve));
  await sleep(200); // the shell reaches `read go`
  const bytes0 = bytes;
  const reads0 = reads;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  writeSync(fd, '\r');
  let timedOut = false;
  try {
    await withTimeout(exit, timeoutMs, 'pty ceiling');
  } catch {
    timedOut = true;
    process.kill(pid, 'SIGKILL');
    await exit;
  }
  // The child is gone: once the master is quiet, let go of our slave copy so that the
  // master ends after the last byte.
  for (let last = -1; last !== bytes;) {
    last = bytes;
    await sleep(20);
  }
  closeSync(slave);
  await withTimeout(ended, 5_000, 'pty ceiling drain').catch(() => stream.destroy());
  const seconds = (lastDataAt - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  bytes -= bytes0;
  reads -= reads0;
  const times = /user\s+([\d.]+)\s+sys\s+([\d.]+)/.exec(end);
  const writerCpuSeconds = times ? Number(times[1]) + Number(times[2]) : null;
  return {
    writerCpuSeconds,
    /** the rate if the writer had a core to itself and never waited for the reader */
    writerLimitMiBps: writerCpuSeconds ? bytes / writerCpuSeconds / (1024 * 1024) : null,
    bytesReceived: bytes,
    seconds,
    timedOut,
    MiBps: bytes / seconds / (1024 * 1024),
    readerCpuSeconds: (cpu.user + cpu.system) / 1e6,
    bytesPerRead: bytes / reads,
  };
}
