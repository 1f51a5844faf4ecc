/**
 * A container's listening TCP ports as the addon reads them (sock_diag, LISTEN only, from
 * a socket made in the container's network namespace): IPv4 and IPv6 listeners, never an
 * established connection or the host's own listeners; null for a process that is gone or
 * a pid whose start time is another's; and no thread of the server is left in the
 * container's namespace.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { listeningTcpPorts, processStartTime, type ProcessRef } from '../../src/runtime/native.js';
import { mdocker, rootOnly, waitFor } from './helpers.js';

const skip = rootOnly();
if (skip) console.log(`# skipping listening-ports: ${skip}`);

function initOf(id: string): ProcessRef {
  const pid = Number.parseInt(readFileSync(join('/run/mdocker', id, 'init.pid'), 'utf8'), 10);
  const startTime = processStartTime(pid);
  assert.ok(startTime !== null, `the init ${pid} of ${id} runs`);
  return { pid, startTime };
}

function threadNetns(): Set<string> {
  return new Set(readdirSync('/proc/self/task').map((tid) => readlinkSync(`/proc/self/task/${tid}/ns/net`)));
}

describe("a container's listening ports", { skip }, () => {
  const started: string[] = [];
  let hostServer: Server | undefined;
  after(async () => {
    hostServer?.close();
    for (const id of started) await mdocker(['rm', '-f', id]);
  });

  it('lists the IPv4 and IPv6 listeners, not connections or the host’s, and null once the init is gone', async () => {
    // A listener on the host's side that must never show in the container's list.
    hostServer = createServer();
    await new Promise<void>((resolve) => hostServer!.listen(0, '127.0.0.1', resolve));
    const hostPort = (hostServer.address() as { port: number }).port;
    const ownNetns = threadNetns();
    assert.equal(ownNetns.size, 1);

    const script = [
      'httpd -p 8080 -h /tmp', // [::]:8080, a tcp6 listener
      'httpd -p 127.0.0.1:8001 -h /tmp', // a tcp listener
      'sleep 300 | nc -l -p 9000 >/dev/null &', // listens, then only the accepted connection
      'sleep 1',
      'sleep 300 | nc 127.0.0.1 9000 >/dev/null &', // an established connection from an ephemeral port
      'touch /tmp/ready',
      'exec sleep 1000',
    ].join('\n');
    const run = await mdocker(['run', '-d', 'busybox', 'sh', '-c', script]);
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    started.push(id);
    const init = initOf(id);
    const connected = async (): Promise<boolean> => {
      const r = await mdocker(['exec', id, 'sh', '-c', 'test -e /tmp/ready && netstat -tn | grep -c ESTABLISHED']);
      return r.code === 0 && Number(r.stdout.trim()) >= 2;
    };
    await waitFor('the connection to 9000 in the container', connected, 15_000);

    const ports = listeningTcpPorts(init) ?? [];
    assert.deepEqual(ports, [8001, 8080]);
    assert.ok(!ports.includes(hostPort), 'the host listener is not the container’s');
    const netstat = await mdocker(['exec', id, 'netstat', '-tuan']);
    assert.match(netstat.stdout, /:9000\s+\S+\s+ESTABLISHED/, 'the connection is there, and not listed');
    // Many reads leave every thread of this process in its own namespace.
    for (let i = 0; i < 50; i++) listeningTcpPorts(init);
    assert.deepEqual(threadNetns(), ownNetns);

    // A start time that is not the init's names another process that had the pid: nothing.
    assert.equal(listeningTcpPorts({ pid: init.pid, startTime: init.startTime + 1 }), null);
    assert.equal((await mdocker(['rm', '-f', id])).code, 0);
    assert.equal(listeningTcpPorts(init), null);
  });
});
