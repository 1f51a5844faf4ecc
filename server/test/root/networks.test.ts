/**
 * Container networks on a real kernel, through the CLI: names resolve and packets flow
 * inside a network; nothing crosses to another network, the host's loopback or the
 * network's own gateway address; `--network none` keeps only lo; nothing is left after
 * `network rm`. Packets go only to loopback and to addresses inside namespaces made here.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Networks } from '../../src/runtime/networks.js';
import { mdocker, mdockerOk as ok, rootOnly, shOnNetwork as sh } from './helpers.js';

const skip = rootOnly();
const stateRoot = process.env.MDOCKER_STATE_ROOT ?? '/run/mdocker';
const tag = `t${process.pid}`;
const netA = `${tag}-a`;
const netB = `${tag}-b`;
const names = [`${tag}-web1`, `${tag}-web2`, `${tag}-other`];

/** The nsfs mounts below the state root: each is a network's namespace. */
function netnsMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(' - nsfs ') && l.split(' ')[4]?.startsWith(stateRoot));
}

describe('networks (CLI)', { skip }, () => {
  let hostServer: Server | undefined;
  after(async () => {
    hostServer?.close();
    for (const name of names) await mdocker(['rm', '-f', name]);
    await mdocker(['network', 'rm', netA, netB]);
  });

  test('two containers of a network reach each other by name; another network and the host stay out of reach', async () => {
    await ok(['network', 'create', netA]);
    await ok(['network', 'create', '--subnet', '10.89.250.0/24', netB]);
    const ls = await ok(['network', 'ls']);
    assert.match(ls, new RegExp(`${netB}\\s+10\\.89\\.250\\.0/24`));
    for (const name of names.slice(0, 2)) {
      await ok([
        'run',
        '-d',
        '--name',
        name,
        '-h',
        name,
        '--network',
        netA,
        'busybox',
        'sh',
        '-c',
        `echo page-of-${name} > /tmp/index.html; exec httpd -f -p 8000 -h /tmp`,
      ]);
    }
    await ok(['run', '-d', '--name', names[2]!, '--network', netB, 'busybox', 'sleep', '1000']);

    // From web2 (exec) and from a third container: names, pages, ping (NET_RAW on a network).
    const both = await sh(
      netA,
      `for n in ${names[0]} ${names[1]}; do wget -qO- http://$n:8000/ || exit 1; done; ping -c 1 -W 3 ${names[0]} >/dev/null && echo pinged`,
    );
    assert.equal(both.code, 0, both.out);
    assert.match(both.out, new RegExp(`page-of-${names[0]}`));
    assert.match(both.out, new RegExp(`page-of-${names[1]}`));
    assert.match(both.out, /pinged/);
    const fromWeb2 = await mdocker(['exec', names[1]!, 'wget', '-qO-', `http://${names[0]}:8000/`]);
    assert.equal(fromWeb2.code, 0, fromWeb2.stderr);
    assert.match(fromWeb2.stdout, /page-of/);

    // ps and inspect show the addresses.
    const inspect = JSON.parse(await ok(['inspect', names[0]!])) as { network: { name: string; ip: string } }[];
    assert.equal(inspect[0]?.network.name, netA);
    const web1Ip = inspect[0]!.network.ip;
    assert.match(web1Ip, /^10\.89\./);
    assert.match(await ok(['ps']), new RegExp(`${web1Ip.replace(/\./g, '\\.')} \\(${netA}\\)`));

    // The other network: neither its names nor its addresses.
    const cross = await sh(
      netB,
      `grep -q ${names[0]} /etc/hosts && echo NAME-KNOWN; timeout 3 wget -qO- http://${web1Ip}:8000/ && echo REACHED-IP; timeout 3 wget -qO- http://${names[0]}:8000/ && echo REACHED-NAME; true`,
    );
    assert.doesNotMatch(cross.out, /REACHED|page-of|NAME-KNOWN/);

    // The host: its loopback service, and the network's gateway address (nobody holds it).
    hostServer = createServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\nHOST-SERVICE\n'));
    await new Promise<void>((resolve) => hostServer!.listen(0, '127.0.0.1', resolve));
    const port = (hostServer.address() as { port: number }).port;
    const gateway = web1Ip.replace(/\.\d+$/, '.1');
    const host = await sh(
      netA,
      `ip route; timeout 3 wget -qO- http://127.0.0.1:${port}/ && echo REACHED; timeout 3 wget -qO- http://${gateway}:${port}/ && echo REACHED; true`,
    );
    assert.doesNotMatch(host.out, /REACHED|HOST-SERVICE/);
    assert.doesNotMatch(host.out, /default/, 'no default route');
  });

  test('--network none keeps only lo', async () => {
    const r = await mdocker(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'lo');
    const byDefault = await mdocker(['run', '--rm', 'busybox', 'ls', '/sys/class/net']);
    assert.equal(byDefault.stdout.trim(), 'lo');
  });

  test('network rm is refused while a container uses it, and leaves nothing', async () => {
    const refused = await mdocker(['network', 'rm', netA]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /in use by 2 containers/);
    for (const name of names) await ok(['rm', '-f', name]);
    await ok(['network', 'rm', netA, netB]);
    assert.ok(!existsSync(`${stateRoot}/networks/${netA}`));
    assert.ok(!existsSync(`${stateRoot}/networks/${netB}`));
    assert.deepEqual(
      netnsMounts().filter((l) => l.includes(tag)),
      [],
    );
    assert.deepEqual(
      readdirSync(`${stateRoot}/networks/subnets`).filter((f) => f.startsWith('10.89.250.')),
      [],
    );
  });
});

describe('networks (runtime), many at once', { skip }, () => {
  test('networks made, joined and removed at the same moment get distinct subnets and addresses, and leave nothing', async () => {
    const root = mkdtempSync('/run/mdocker-nets-burst-');
    try {
      const networks = new Networks(root, '10.91.0.0/16');
      const names = Array.from({ length: 8 }, (_, i) => `${tag}-burst${i}`);
      const records = await Promise.all(names.map((name) => networks.create(name, { owner: true })));
      assert.equal(new Set(records.map((r) => r.subnet)).size, names.length, 'one subnet each');
      for (const name of names) assert.ok(existsSync(networks.netnsPath(name)));
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(' - nsfs ') && l.split(' ')[4]?.startsWith(`${root}/`));
      assert.equal(mounts.length, names.length);

      // Members of two networks join at once, with names and addresses of their own.
      const joins = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          networks.attach(names[i % 2]!, { id: `${i}`.padStart(32, '0'), name: `m${i}`, hostname: `m${i}` }),
        ),
      );
      for (const name of names.slice(0, 2)) {
        const ips = joins.filter((j) => j.name === name).map((j) => j.ip);
        assert.equal(new Set(ips).size, 6, `distinct addresses on ${name}`);
        const hosts = readFileSync(join(root, 'networks', name, 'hosts'), 'utf8');
        assert.equal(hosts.split('\n').filter((l) => l.startsWith('10.91.')).length, 6, hosts);
      }
      // A member that leaves leaves the hosts file; once all have left, the next member
      // to join finds only itself there.
      const hostsOf = (name: string): string[] =>
        readFileSync(join(root, 'networks', name, 'hosts'), 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('10.91.'));
      const first = joins.filter((j) => j.name === names[0]);
      await networks.detach(names[0]!, '0'.padStart(32, '0'));
      assert.equal(hostsOf(names[0]!).length, 5);
      const shrunk = readFileSync(join(root, 'networks', names[0]!, 'hosts'), 'utf8');
      assert.ok(shrunk.endsWith('\n') && !shrunk.endsWith('\n\n'), `cut to its new length: ${JSON.stringify(shrunk)}`);
      assert.ok(!hostsOf(names[0]!).some((l) => /\sm0$/.test(l)), 'm0 left');
      await Promise.all(first.map((_, k) => networks.detach(names[0]!, `${k * 2}`.padStart(32, '0'))));
      const again = await networks.attach(names[0]!, { id: 'f'.repeat(32), name: 'late', hostname: 'late' });
      assert.deepEqual(
        hostsOf(names[0]!).map((l) => l.split(/\s+/)[0]),
        [again.ip],
      );

      await Promise.all(names.map((name) => networks.remove(name, { force: true })));
      assert.deepEqual(
        readdirSync(join(root, 'networks')).filter((n) => n !== 'subnets'),
        [],
      );
      assert.deepEqual(readdirSync(join(root, 'networks', 'subnets')), []);
      assert.deepEqual(
        readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .filter((l) => l.includes(' - nsfs ') && l.split(' ')[4]?.startsWith(`${root}/`)),
        [],
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
