/**
 * Egress on a real kernel, through the CLI. The "outside" is a network namespace this
 * test makes, joined to the host by a veth with a TEST-NET-2 address (198.51.100.0/24)
 * and a private one (172.31.250.0/24), serving busybox httpd; no packet leaves the
 * machine. With egress a container reaches the outside's public address, masqueraded;
 * never the host's own addresses, the gateway, a private address or another network.
 * Without egress the outside is unreachable. The nftables rules go with the network,
 * and after a kill -9 with the next start.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, mdocker, mdockerOk as ok, rootOnly, shOnNetwork as sh, waitFor } from './helpers.js';

const skip = rootOnly();
const stateRoot = process.env.MDOCKER_STATE_ROOT ?? '/run/mdocker';
const tag = `t${process.pid}`;
const egressNet = `${tag}-eg`;
const otherEgressNet = `${tag}-eg2`;
const plainNet = `${tag}-plain`;
const target = `${tag}-target`;
const outsideNs = `mdtout${process.pid}`;
const outsideVeth = `mdo${process.pid % 1_000_000}`;
const OUTSIDE = '198.51.100.2';
const OUTSIDE_HOST_SIDE = '198.51.100.1';
const OUTSIDE_PRIVATE = '172.31.250.2';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function nftTables(): string[] {
  const out = JSON.parse(execFileSync('nft', ['-j', 'list', 'tables'], { encoding: 'utf8' })) as {
    nftables: { table?: { family: string; name: string } }[];
  };
  return out.nftables.flatMap((i) => (i.table ? [`${i.table.family} ${i.table.name}`] : []));
}

function recordOf(network: string): { uplink: string; gateway: string; hostAddress: string } {
  const record = JSON.parse(readFileSync(join(stateRoot, 'networks', network, 'network.json'), 'utf8')) as {
    egress: { uplink: string; gateway: string; hostAddress: string } | null;
  };
  assert.ok(record.egress, `${network} has egress`);
  return record.egress;
}

function uplinkOf(network: string): string {
  return recordOf(network).uplink;
}

/** A TCP connection from a container on `network`: "reached" or the reason it failed. */
function connectScript(address: string, port: number): string {
  return `if echo | nc -w 2 ${address} ${port} >/dev/null 2>&1; then echo reached; else echo blocked; fi`;
}

describe('network egress (CLI)', { skip }, () => {
  let dir = '';
  let httpd: ChildProcess | undefined;
  let hostServer: Server | undefined;
  let hostPort = 0;
  let hostConnections = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mdocker-egress-'));
    mkdirSync(join(dir, 'www', 'cgi-bin'), { recursive: true });
    writeFileSync(join(dir, 'www', 'index.html'), 'page-from-outside\n');
    writeFileSync(
      join(dir, 'www', 'cgi-bin', 'ip'),
      '#!/bin/busybox sh\necho "Content-Type: text/plain"\necho\necho "peer=$REMOTE_ADDR"\n',
    );
    chmodSync(join(dir, 'www', 'cgi-bin', 'ip'), 0o755);
    ip('netns', 'add', outsideNs);
    ip('link', 'add', outsideVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outsideNs);
    ip('addr', 'add', `${OUTSIDE_HOST_SIDE}/24`, 'dev', outsideVeth);
    ip('addr', 'add', '172.31.250.1/24', 'dev', outsideVeth);
    ip('link', 'set', outsideVeth, 'up');
    ip('-n', outsideNs, 'addr', 'add', `${OUTSIDE}/24`, 'dev', 'eth0');
    ip('-n', outsideNs, 'addr', 'add', `${OUTSIDE_PRIVATE}/24`, 'dev', 'eth0');
    ip('-n', outsideNs, 'link', 'set', 'eth0', 'up');
    ip('-n', outsideNs, 'link', 'set', 'lo', 'up');
    ip('-n', outsideNs, 'route', 'add', 'default', 'via', OUTSIDE_HOST_SIDE);
    // Answers from the outside come in on this test's own veth: it forwards, no other device changes.
    writeFileSync(`/proc/sys/net/ipv4/conf/${outsideVeth}/forwarding`, '1');
    httpd = spawn('ip', ['netns', 'exec', outsideNs, 'busybox', 'httpd', '-f', '-p', '8099', '-h', join(dir, 'www')], {
      stdio: 'ignore',
    });
    // A service of the host's, on every address: no container may reach it.
    hostServer = createServer((socket) => {
      hostConnections++;
      socket.end('host-service\n');
    });
    await new Promise<void>((resolve) => hostServer!.listen(0, '0.0.0.0', resolve));
    hostPort = (hostServer.address() as AddressInfo).port;

    await ok(['network', 'create', '--egress', egressNet]);
    await ok(['network', 'create', '--egress', otherEgressNet]);
    await ok(['network', 'create', plainNet]);
    await ok([
      'run',
      '-d',
      '--name',
      target,
      '--network',
      otherEgressNet,
      'busybox',
      'sh',
      '-c',
      'exec httpd -f -p 8000 -h /',
    ]);
  });

  after(async () => {
    await mdocker(['rm', '-f', target]);
    await mdocker(['network', 'rm', egressNet, otherEgressNet, plainNet]);
    hostServer?.close();
    if (httpd?.pid) httpd.kill('SIGKILL');
    try {
      ip('netns', 'del', outsideNs);
    } catch {
      // not made
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('a container reaches an outside address, masqueraded, with a default route and the host nameservers', async () => {
    const r = await sh(
      egressNet,
      `ip route; cat /etc/resolv.conf 2>/dev/null; wget -qO- http://${OUTSIDE}:8099/ && wget -qO- http://${OUTSIDE}:8099/cgi-bin/ip && ping -c 1 -W 3 ${OUTSIDE} >/dev/null && echo pinged`,
    );
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`default via ${recordOf(egressNet).gateway.replace(/\./g, '\\.')} dev eth0`));
    assert.match(r.out, /page-from-outside/);
    // Seen from outside, the container is the host's address on the way there.
    // (busybox httpd prints an IPv4 peer as IPv4-mapped IPv6.)
    assert.match(r.out, new RegExp(`peer=\\[?(::ffff:)?${OUTSIDE_HOST_SIDE.replace(/\./g, '\\.')}\\]?\n`));
    assert.doesNotMatch(r.out, /peer=\[?(::ffff:)?10\.89\./);
    assert.match(r.out, /pinged/);
  });

  test("never the host's services, the gateway, a private address or another network, even with egress", async () => {
    const inspect = JSON.parse(await ok(['inspect', target])) as { network: { ip: string } }[];
    const targetIp = inspect[0]!.network.ip;
    assert.match(targetIp, /^\d+\.\d+\.\d+\.\d+$/);
    const { gateway, hostAddress } = recordOf(egressNet);
    const cases: [string, string, number][] = [
      ["the uplink's host end", hostAddress, hostPort],
      ["the host's address toward the outside", OUTSIDE_HOST_SIDE, hostPort],
      ['the gateway', gateway, hostPort],
      ['a private address outside', OUTSIDE_PRIVATE, 8099],
      ['a container of another network with egress', targetIp, 8000],
      ['cloud metadata', '169.254.169.254', 80],
    ];
    const script = cases.map(([, address, port]) => connectScript(address, port)).join('; ');
    const before = hostConnections;
    const r = await sh(egressNet, script);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, cases.length, r.out);
    cases.forEach(([what], i) => assert.equal(lines[i], 'blocked', `${what}: ${r.out}`));
    assert.equal(hostConnections, before, 'the host service saw no connection');
    // The same container setup reaches the outside: the blocks above are the rules', not a broken network.
    const control = await sh(otherEgressNet, connectScript(OUTSIDE, 8099));
    assert.equal(control.out.trim(), 'reached');
  });

  test('without egress the outside is unreachable', async () => {
    const r = await sh(plainNet, `ip route; ${connectScript(OUTSIDE, 8099)}`);
    assert.doesNotMatch(r.out, /default/);
    assert.match(r.out, /blocked/);
  });

  test("the host's rules go with the network, and its uplink", async () => {
    const uplink = uplinkOf(egressNet);
    assert.ok(nftTables().includes(`inet mdocker-${uplink}`), nftTables().join(', '));
    assert.ok(existsSync(`/sys/class/net/${uplink}`));
    const plainTables = nftTables().length;
    await ok(['network', 'rm', egressNet]);
    assert.ok(!nftTables().includes(`inet mdocker-${uplink}`));
    assert.equal(nftTables().length, plainTables - 1);
    await waitFor('the uplink gone', () => !existsSync(`/sys/class/net/${uplink}`), 5000);
  });

  test('after a kill -9 of its owner, the next start removes the network, its uplink and its rules', async () => {
    const name = `${tag}-owned`;
    const script = `
      const { Runtime } = await import(${JSON.stringify(join(cliPath, '../../runtime/containers.js'))});
      const runtime = await Runtime.open({ stateRoot: ${JSON.stringify(stateRoot)} });
      await runtime.networks.create(${JSON.stringify(name)}, { owner: true, egress: true });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1e6);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`the owner exited ${code}`)));
    });
    const uplink = uplinkOf(name);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.ok(nftTables().includes(`inet mdocker-${uplink}`), 'left by the kill');
    // Any command opens the runtime, which reaps.
    await ok(['network', 'ls']);
    assert.ok(!existsSync(join(stateRoot, 'networks', name)));
    await waitFor('the uplink gone', () => !existsSync(`/sys/class/net/${uplink}`), 5000);
    assert.ok(!nftTables().includes(`inet mdocker-${uplink}`), nftTables().join(', '));
  });
});
