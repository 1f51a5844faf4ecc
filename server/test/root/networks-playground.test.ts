/**
 * The playground's networks on a real kernel: a session's containers reach each other by
 * hostname (ping, a page from busybox httpd), another session's cannot by name or
 * address, nobody reaches the host's loopback or the server's port; a class's students
 * share one network or each keep their own; after kill -9 of a server with 20 networked
 * containers the next start leaves no namespace mount, network directory, subnet
 * reservation or hosts file. Packets go only to loopback and to addresses inside
 * namespaces made here.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { resolveServeConfig } from '../../src/http/config.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import type { ClassJson, ContainerJson, ExecResultJson } from '../../src/protocol/index.js';
import { launcherProcesses, rootOnly, waitFor } from './helpers.js';
import { Client } from './playground-client.js';
import { spawnServer, type SpawnedServer } from './real-server.js';

const skip = rootOnly();
if (skip) console.log(`# skipping networks-playground: ${skip}`);

/** The nsfs mounts below a state root: each holds a network's namespace. */
function netnsMounts(stateRoot: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(' - nsfs ') && line.split(' ')[4]?.startsWith(`${stateRoot}/`));
}

/** The networks' directories (and subnet reservations) below a state root. */
function networkDirs(stateRoot: string): { networks: string[]; subnets: string[] } {
  const dir = `${stateRoot}/networks`;
  const networks = existsSync(dir) ? readdirSync(dir).filter((name) => name !== 'subnets') : [];
  const subnets = existsSync(`${dir}/subnets`) ? readdirSync(`${dir}/subnets`) : [];
  return { networks, subnets };
}

function hostInterfaces(): string[] {
  return readdirSync('/sys/class/net').sort();
}

async function sh(client: Client, container: ContainerJson, script: string): Promise<ExecResultJson & { out: string }> {
  const reply = await client.request('POST', `/api/containers/${container.id}/exec`, {
    cmd: ['sh', '-c', script],
    timeoutMs: 20_000,
  });
  assert.equal(reply.status, 200, reply.text);
  const result = reply.body as ExecResultJson;
  return { ...result, out: result.stdout + result.stderr };
}

/** A container serving "page-of-<its hostname>" on port 8000. */
function webServer(client: Client): Promise<ContainerJson> {
  return client.create({
    cmd: ['sh', '-c', 'echo page-of-$(hostname) > /tmp/index.html; exec httpd -f -p 8000 -h /tmp'],
  });
}

describe('playground networks on a real kernel', { skip }, () => {
  let stateRoot = '';
  let server: RunningServer;
  let hostService: Server | undefined;
  let base = '';

  before(async () => {
    stateRoot = mkdtempSync('/run/mdocker-pnet-test-');
    const config = resolveServeConfig(
      {
        port: 0,
        stateRoot,
        dataDir: `${stateRoot}-data`,
        webDir: '/nonexistent',
        createRatePerIp: 1000,
        createRatePerSession: 1000,
        networkGrace: '3s',
      },
      {},
    );
    server = await startServer(config, { logger: pino({ level: 'silent' }), handleSignals: false, printUrl: false });
    base = `http://127.0.0.1:${server.port}/`;
  });

  after(async () => {
    hostService?.close();
    await server?.close();
    if (stateRoot) {
      assert.deepEqual(netnsMounts(stateRoot), [], 'no network namespace left after the server stopped');
      rmSync(stateRoot, { recursive: true, force: true });
      rmSync(`${stateRoot}-data`, { recursive: true, force: true });
    }
  });

  it("a session's containers ping and fetch each other by hostname; another session's reach neither; nobody reaches the host", async () => {
    const alice = new Client(base);
    const bob = new Client(base);
    const web = await webServer(alice);
    const shell = await alice.create();
    const stranger = await bob.create();
    assert.ok(web.network && shell.network && stranger.network, 'each container is on a network');
    assert.equal(web.network.name, shell.network.name, "one session's network");
    assert.notEqual(stranger.network.name, web.network.name);
    const got = (await alice.request('GET', `/api/containers/${web.id}`)).body as ContainerJson;
    assert.deepEqual(got.network, web.network);

    const together = await waitFor(
      'a page from the neighbour',
      async () => {
        const r = await sh(alice, shell, `wget -qO- http://${web.hostname}:8000/`);
        return r.exitCode === 0 ? r : null;
      },
      10_000,
    );
    assert.match(together.out, new RegExp(`page-of-${web.hostname}`));
    const ping = await sh(alice, shell, `ping -c 1 -W 3 ${web.hostname}`);
    assert.equal(ping.exitCode, 0, ping.out);
    assert.match(ping.out, /1 packets received/);

    const cross = await sh(
      bob,
      stranger,
      `grep -q ${web.hostname} /etc/hosts && echo NAME-KNOWN; ` +
        `timeout 3 wget -qO- http://${web.network.ip}:8000/ && echo REACHED-IP; ` +
        `timeout 3 wget -qO- http://${web.hostname}:8000/ && echo REACHED-NAME; ` +
        `ping -c 1 -W 2 ${web.network.ip} >/dev/null && echo PINGED; true`,
    );
    assert.doesNotMatch(cross.out, /REACHED|page-of|NAME-KNOWN|PINGED/);

    hostService = createServer((socket) => socket.end('HTTP/1.0 200 OK\r\n\r\nHOST-SERVICE\n'));
    await new Promise<void>((resolve) => hostService!.listen(0, '127.0.0.1', resolve));
    const hostPort = (hostService.address() as { port: number }).port;
    const gateway = shell.network.ip.replace(/\.\d+$/, '.1');
    const host = await sh(
      alice,
      shell,
      [hostPort, server.port]
        .flatMap((port) => [
          `timeout 3 wget -qO- http://127.0.0.1:${port}/ && echo REACHED`,
          `timeout 3 wget -qO- http://${gateway}:${port}/ && echo REACHED`,
        ])
        .join('; ') + '; ip route; true',
    );
    assert.doesNotMatch(host.out, /REACHED|HOST-SERVICE/);
    assert.doesNotMatch(host.out, /default/, 'no default route');

    for (const [client, container] of [
      [alice, web],
      [alice, shell],
      [bob, stranger],
    ] as const) {
      assert.equal((await client.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    }
    await waitFor('the sessions networks removed', () => networkDirs(stateRoot).networks.length === 0);
    assert.deepEqual(networkDirs(stateRoot).subnets, []);
    assert.deepEqual(netnsMounts(stateRoot), []);
  });

  it("a session's next container joins its network within the grace, nobody else's does, and it goes after", async () => {
    const alice = new Client(base);
    const bob = new Client(base);
    const first = await alice.create();
    assert.ok(first.network);
    const network = first.network.name;
    assert.equal((await alice.request('DELETE', `/api/containers/${first.id}`)).status, 204);
    assert.deepEqual(networkDirs(stateRoot).networks, [network], 'kept for the grace');

    // Another session, in the grace of alice's network, gets a network of its own.
    const stranger = await bob.create();
    assert.ok(stranger.network);
    assert.notEqual(stranger.network.name, network);
    const again = await alice.create();
    assert.equal(again.network?.name, network, 'the next container joins the kept network');
    const probe = await sh(alice, again, 'ip -4 addr show eth0');
    assert.equal(probe.exitCode, 0, probe.out);
    assert.match(probe.out, new RegExp(`inet ${again.network!.ip.replace(/\./g, '\\.')}/`));

    for (const [client, container] of [
      [alice, again],
      [bob, stranger],
    ] as const)
      assert.equal((await client.request('DELETE', `/api/containers/${container.id}`)).status, 204);
    assert.equal(networkDirs(stateRoot).networks.length, 2, 'both kept for the grace');
    await waitFor('the kept networks removed after the grace', () => networkDirs(stateRoot).networks.length === 0);
    assert.deepEqual(networkDirs(stateRoot).subnets, []);
    assert.deepEqual(netnsMounts(stateRoot), []);
  });

  it('a network in its grace is removed when the server stops', async () => {
    const root = mkdtempSync('/run/mdocker-pnet-grace-');
    try {
      const config = resolveServeConfig(
        { port: 0, stateRoot: root, dataDir: `${root}-data`, webDir: '/nonexistent', networkGrace: '1h' },
        {},
      );
      const other = await startServer(config, {
        logger: pino({ level: 'silent' }),
        handleSignals: false,
        printUrl: false,
      });
      try {
        const client = new Client(`http://127.0.0.1:${other.port}/`);
        const container = await client.create();
        assert.equal((await client.request('DELETE', `/api/containers/${container.id}`)).status, 204);
        assert.deepEqual(networkDirs(root).networks, [container.network!.name]);
      } finally {
        await other.close();
      }
      assert.deepEqual(networkDirs(root), { networks: [], subnets: [] });
      assert.deepEqual(netnsMounts(root), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(`${root}-data`, { recursive: true, force: true });
    }
  });

  for (const mode of ['class', 'per-student'] as const) {
    it(`a class with network '${mode}': students ${mode === 'class' ? 'reach' : 'cannot reach'} each other by hostname`, async () => {
      const teacher = new Client(base);
      await teacher.request('GET', '/healthz');
      const created = await teacher.request('POST', '/api/classes', { name: `networks ${mode}`, network: mode });
      assert.equal(created.status, 201, created.text);
      const cls = created.body as ClassJson;
      assert.equal(cls.network, mode);
      const students = [new Client(base), new Client(base)];
      const containers: ContainerJson[] = [];
      for (const [i, student] of students.entries()) {
        const joined = await student.request('POST', '/api/join', { code: cls.joinCode, name: `student ${i}` });
        assert.equal(joined.status, 201, joined.text);
        containers.push(await student.create());
      }
      const [first, second] = containers as [ContainerJson, ContainerJson];
      const result = await sh(
        students[0]!,
        first,
        `ping -c 1 -W 3 ${second.hostname} >/dev/null && echo BY-NAME; ` +
          `ping -c 1 -W 3 ${second.network!.ip} >/dev/null && echo BY-ADDRESS; true`,
      );
      if (mode === 'class') {
        assert.equal(first.network?.name, second.network?.name);
        assert.match(result.out, /BY-NAME/);
        assert.match(result.out, /BY-ADDRESS/);
      } else {
        assert.notEqual(first.network?.name, second.network?.name);
        assert.doesNotMatch(result.out, /BY-NAME|BY-ADDRESS/);
      }
      assert.equal((await teacher.request('DELETE', `/api/classes/${cls.id}`)).status, 204);
      await waitFor('the class networks removed', () => networkDirs(stateRoot).networks.length === 0);
      assert.deepEqual(netnsMounts(stateRoot), []);
    });
  }
});

describe('a killed server with networked containers, started again', { skip }, () => {
  let stateRoot = '';
  const children: ChildProcess[] = [];

  const serve = (): Promise<SpawnedServer> => spawnServer(stateRoot, children);

  before(() => {
    stateRoot = mkdtempSync('/run/mdocker-pnet-kill-');
  });

  after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (stateRoot) {
      rmSync(stateRoot, { recursive: true, force: true });
      rmSync(`${stateRoot}-data`, { recursive: true, force: true });
    }
  });

  it('leaves no namespace mount, network directory, subnet, hosts file or interface after the next start', async () => {
    const interfacesBefore = hostInterfaces();
    const first = await serve();
    const ids: string[] = [];
    const networks = new Set<string>();
    for (let session = 0; session < 5; session++) {
      const client = new Client(first.url);
      for (let i = 0; i < 4; i++) {
        const container = await client.create();
        assert.ok(container.network);
        networks.add(container.network.name);
        ids.push(container.id);
      }
    }
    assert.equal(ids.length, 20);
    assert.equal(networks.size, 5, 'one network per session');
    assert.equal(netnsMounts(stateRoot).length, 5);
    for (const name of networks) {
      const hosts = readFileSync(`${stateRoot}/networks/${name}/hosts`, 'utf8');
      assert.equal(hosts.split('\n').filter((line) => line.startsWith('10.')).length, 4, hosts);
    }

    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor('the killed server containers gone', () =>
      launcherProcesses().every((line) => !ids.some((id) => line.includes(id))),
    );
    assert.equal(netnsMounts(stateRoot).length, 5, 'what the crash left');

    const second = await serve();
    assert.deepEqual(netnsMounts(stateRoot), [], 'no network namespace mount');
    assert.deepEqual(networkDirs(stateRoot), { networks: [], subnets: [] }, 'no network directory or subnet');
    assert.deepEqual(hostInterfaces(), interfacesBefore, 'no veth or bridge in the host namespace');
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
