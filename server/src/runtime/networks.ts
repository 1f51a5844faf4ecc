/**
 * Container networks: a network namespace of its own with a bridge (made by the
 * launcher's `network-create`, over rtnetlink), a subnet, its members' addresses and a
 * hosts file every member sees at /etc/hosts. State under the state root:
 *
 *   networks/<name>/network.json   the record (subnet, owner)
 *   networks/<name>/netns          the nsfs mount holding the network's namespace
 *   networks/<name>/hosts          the members' names, rewritten in place (members bind it)
 *   networks/<name>/members/<ip>   one member: created exclusively, so two runtimes never
 *                                  hand out one address
 *   networks/subnets/<a.b.c.d>_<n> a subnet taken, created exclusively, for the same reason
 *
 * A network with egress also has an uplink to the host (made by the launcher), the
 * gateway address on its bridge, and nftables rules (mdocker-nft): in its namespace a
 * table `inet mdocker` that forwards only from the bridge out of the uplink (and the
 * answers) and masquerades; in the host's a table `inet mdocker-<uplink>` that keeps the
 * host's own services, private and link-local addresses and the other networks out of
 * reach, lets nothing in that was not asked for, and masquerades to the outside. The
 * host's table goes with the network: its record names the uplink, and stays until the
 * table is gone, so a reap after a crash finds it.
 */
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { MdockerError, launcherError } from './errors.js';
import { isAlive, launcherPath, nftPath, selfRef, type ProcessRef } from './native.js';
import { runHelper } from './helper.js';
import { randomHex } from './random.js';

export const DEFAULT_NETWORK_RANGE = '10.89.0.0/16';
/** Each network's subnet when none is given: the next free one of this size in the range. */
const DEFAULT_SUBNET_PREFIX = 24;
/** A network directory without its record this long is a crashed create's, not one under way. */
const ORPHAN_GRACE_MS = 60_000;
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export interface NetworkRecord {
  name: string;
  /** "10.89.3.0/24" */
  subnet: string;
  /** The process that made it (a server): the network is a leftover once it is gone. Null: kept until `network rm`. */
  owner: ProcessRef | null;
  createdAt: string;
  /** Null (or absent, in older records): the network reaches nothing outside itself. */
  egress?: EgressRecord | null;
}

export interface EgressRecord {
  /** The uplink's name in the host's namespace ("mdu" and 8 hex digits). */
  uplink: string;
  /** The bridge's address, the members' default route: the subnet's first address. */
  gateway: string;
  /** The uplink's /30, the subnet's last: its host end's address and the network's end's. */
  hostAddress: string;
  peerAddress: string;
  /** Nameservers the members get in /etc/resolv.conf (the host's, but loopback ones). */
  dns: string[];
}

export interface NetworkMember {
  id: string;
  name: string;
  hostname: string;
  ip: string;
}

/** What the launcher needs to put a container on a network. */
export interface NetworkAttachment {
  name: string;
  ip: string;
  /** "10.89.3.2/24" */
  address: string;
  netnsPath: string;
  hostsPath: string;
  /** A network with egress: the default route and /etc/resolv.conf's nameservers. */
  gateway: string | null;
  dns: string[];
}

export interface Cidr {
  base: number;
  prefix: number;
}

export function ipToNumber(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new MdockerError('INVALID_ARGUMENT', `invalid IPv4 address ${JSON.stringify(ip)}`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** "10.89.0.0/16" → base and prefix; the base must be the subnet's first address. */
export function parseCidr(text: string, what = 'subnet'): Cidr {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const prefix = match ? Number(match[2]) : NaN;
  if (!match || prefix < 8 || prefix > 30) {
    throw new MdockerError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(text)}: A.B.C.D/LEN, LEN 8 to 30`);
  }
  const base = ipToNumber(match[1]!);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid ${what} ${text}: ${match[1]} is not the first address of a /${prefix}`,
    );
  }
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${numberToIp(cidr.base)}/${cidr.prefix}`;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefix);
  const bEnd = b.base + 2 ** (32 - b.prefix);
  return a.base < bEnd && b.base < aEnd;
}

/** The /24s (or smaller, for a smaller range) of range, in order, that overlap none of taken. */
export function nextFreeSubnet(range: Cidr, taken: Cidr[]): Cidr | null {
  const prefix = Math.max(range.prefix, DEFAULT_SUBNET_PREFIX);
  const size = 2 ** (32 - prefix);
  for (let base = range.base; base < range.base + 2 ** (32 - range.prefix); base += size) {
    const candidate = { base, prefix };
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  return null;
}

/** The member addresses of a subnet: not .1 (the gateway), the broadcast, nor, with egress, the uplink's /30 (the last). */
export function memberAddresses(subnet: Cidr, egress = false): { first: number; last: number } {
  return { first: subnet.base + 2, last: subnet.base + 2 ** (32 - subnet.prefix) - (egress ? 5 : 2) };
}

/** The smallest subnet with egress: the gateway, the uplink's /30 and a few members. */
export const MAX_EGRESS_PREFIX = 28;

/** Addresses a network with egress never reaches: private, shared, loopback, link-local (cloud metadata), multicast and reserved. */
export const EGRESS_BLOCKED = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/3',
];

export function egressAddresses(subnet: Cidr): Omit<EgressRecord, 'uplink' | 'dns'> {
  const link = subnet.base + 2 ** (32 - subnet.prefix) - 4;
  return {
    gateway: numberToIp(subnet.base + 1),
    hostAddress: numberToIp(link + 1),
    peerAddress: numberToIp(link + 2),
  };
}

/** The nameservers of a resolv.conf text: IPv4, not loopback (unreachable from a container), up to 3. */
export function nameservers(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(line);
    if (!m) continue;
    try {
      if (ipToNumber(m[1]!) >>> 24 === 127) continue;
    } catch {
      continue;
    }
    if (!found.includes(m[1]!)) found.push(m[1]!);
  }
  return found.slice(0, 3);
}

/** The host's nameservers, as Docker finds them: /etc/resolv.conf, or systemd-resolved's upstream list behind 127.0.0.53. */
export function hostNameservers(): string[] {
  for (const file of ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf']) {
    try {
      const found = nameservers(readFileSync(file, 'utf8'));
      if (found.length > 0) return found;
    } catch {
      // the next one
    }
  }
  return [];
}

/** The nft scripts of a network with egress: one for its own namespace, one for the host's. */
export function egressRules(egress: EgressRecord, range: string): { network: string; host: string } {
  const up = JSON.stringify(egress.uplink);
  const network = [
    'table inet mdocker {',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    iifname "br0" oifname "br0" accept',
    '    iifname "br0" oifname "up0" accept',
    '    iifname "up0" oifname "br0" ct state established,related accept',
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    ct state established,related accept',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    oifname "up0" masquerade',
    '  }',
    '}',
  ];
  const table = `mdocker-${egress.uplink}`;
  const dns =
    egress.dns.length === 0
      ? []
      : [`    iifname ${up} ip daddr { ${egress.dns.join(', ')} } meta l4proto { tcp, udp } th dport 53 accept`];
  const host = [
    // Made empty first, so that applying twice replaces the rules instead of adding a copy.
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${up} drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    oifname ${up} ct state established,related accept`,
    `    oifname ${up} drop`,
    `    iifname ${up} meta nfproto != ipv4 drop`,
    ...dns,
    `    iifname ${up} ip daddr { ${[...EGRESS_BLOCKED, range].join(', ')} } drop`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${egress.peerAddress} oifname != ${up} masquerade`,
    '  }',
    '}',
  ];
  return { network: network.join('\n') + '\n', host: host.join('\n') + '\n' };
}

/**
 * Why the host will not carry a network's egress, or null: answers come back through the
 * interface of the host's default route, which must forward (net.ipv4.conf.DEV.forwarding,
 * or ip_forward for all). mdocker turns forwarding on only for the uplinks it makes.
 */
export function hostForwardingProblem(
  routeTable = '/proc/net/route',
  sysctlDir = '/proc/sys/net/ipv4/conf',
): string | null {
  let device: string | undefined;
  try {
    for (const line of readFileSync(routeTable, 'utf8').split('\n').slice(1)) {
      const [dev, destination, , , , , , mask] = line.trim().split(/\s+/);
      if (destination === '00000000' && mask === '00000000') {
        device = dev;
        break;
      }
    }
  } catch {
    return "cannot read the host's routes";
  }
  if (device === undefined) return 'the host has no default route: containers reach no outside address';
  try {
    if (readFileSync(join(sysctlDir, device, 'forwarding'), 'utf8').trim() === '1') return null;
  } catch {
    return `cannot read net.ipv4.conf.${device}.forwarding`;
  }
  return `the host does not forward on ${device}, its default route: answers from outside cannot reach containers until sysctl -w net.ipv4.conf.${device}.forwarding=1 (mdocker changes no host setting it did not make)`;
}

/** The hosts file of a network: localhost, then each member's address, hostname and name. */
export function hostsFile(members: NetworkMember[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const sorted = [...members].sort((a, b) => ipToNumber(a.ip) - ipToNumber(b.ip));
  for (const m of sorted) lines.push(`${m.ip}\t${[...new Set([m.hostname, m.name])].join(' ')}`);
  return lines.join('\n') + '\n';
}

export function validateNetworkName(name: string): void {
  if (!NAME_PATTERN.test(name) || name === 'none' || name === 'subnets') {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid network name ${JSON.stringify(name.slice(0, 64))}: letters, digits, _ . -, up to 63, not "none"`,
    );
  }
}

/** Runs a native helper that answers with exit 0 (stdout its output), or 1 and one JSON error line. */
async function askNative(file: string, args: string[], input?: string): Promise<string> {
  const { code, stdout, stderr } = await runHelper(file, args, {
    timeoutMs: 10_000,
    maxBuffer: 4 << 20,
    ...(input === undefined ? {} : { input }),
  });
  if (code === 0) return stdout;
  let parsed: { code: string; message: string; errno?: number; syscall?: string };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    const name = file.slice(file.lastIndexOf('/') + 1);
    throw new MdockerError('RUNTIME', `${name} ${args[0]} failed: ${stdout.trim() || stderr.trim() || `exit ${code}`}`);
  }
  throw launcherError(parsed);
}

function askLauncher(verb: 'network-create' | 'network-remove', path: string, extra: string[] = []): Promise<void> {
  return askNative(launcherPath, [verb, path, ...extra]).then(() => undefined);
}

/** Runs an nft script in the host's namespace, or in the one held at netnsPath. */
function applyRules(script: string, netnsPath?: string): Promise<void> {
  return askNative(nftPath, [...(netnsPath ? ['--netns', netnsPath] : []), 'apply'], script).then(() => undefined);
}

const UPLINK_PATTERN = /^mdu[0-9a-f]{8}$/;

/** Removes the host's table of an uplink; nothing when there is none. */
function removeHostRules(uplink: string): Promise<void> {
  if (!UPLINK_PATTERN.test(uplink)) return Promise.resolve();
  const table = `inet mdocker-${uplink}`;
  return applyRules(`table ${table}\ndelete table ${table}\n`);
}

let tmpCounter = 0;

export class Networks {
  readonly dir: string;
  private readonly range: Cidr;
  /**
   * Each network's create, member changes and removal, one at a time in this process.
   * Different networks go on at once: their directories and subnet files are taken with
   * exclusive creates, so a class of first containers does not wait for each other's
   * namespace to be made.
   */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(stateRoot: string, range: string = process.env.MDOCKER_NETWORK_RANGE ?? DEFAULT_NETWORK_RANGE) {
    this.dir = join(stateRoot, 'networks');
    this.range = parseCidr(range, 'network range');
  }

  private serial<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(name) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(name, settled);
    void settled.then(() => {
      if (this.chains.get(name) === settled) this.chains.delete(name);
    });
    return next;
  }

  private path(name: string, file?: 'network.json' | 'netns' | 'hosts' | 'members'): string {
    validateNetworkName(name);
    return file === undefined ? join(this.dir, name) : join(this.dir, name, file);
  }

  /** The nsfs mount that holds the network's namespace (its bridge and the members' veth peers). */
  netnsPath(name: string): string {
    return this.path(name, 'netns');
  }

  private subnetFile(cidr: Cidr): string {
    return join(this.dir, 'subnets', `${numberToIp(cidr.base)}_${cidr.prefix}`);
  }

  async get(name: string): Promise<NetworkRecord | null> {
    try {
      return JSON.parse(readFileSync(this.path(name, 'network.json'), 'utf8')) as NetworkRecord;
    } catch (err) {
      if (err instanceof MdockerError) throw err;
      return null;
    }
  }

  async list(): Promise<NetworkRecord[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n !== 'subnets' && NAME_PATTERN.test(n));
    } catch {
      return [];
    }
    const records = await Promise.all(names.map((n) => this.get(n)));
    return records.filter((r): r is NetworkRecord => r !== null).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * CONFLICT when the name or the subnet is taken. `owner`: the network dies with that
   * process (reap). `egress`: its members reach outside addresses (see the top of the file).
   */
  create(name: string, opts: { subnet?: string; owner?: boolean; egress?: boolean } = {}): Promise<NetworkRecord> {
    validateNetworkName(name);
    if (opts.egress && opts.subnet !== undefined && parseCidr(opts.subnet).prefix > MAX_EGRESS_PREFIX) {
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `a network with egress needs a subnet of /${MAX_EGRESS_PREFIX} or larger (its gateway and uplink take 5 addresses): ${opts.subnet}`,
      );
    }
    return this.serial(name, async () => {
      mkdirSync(join(this.dir, 'subnets'), { recursive: true, mode: 0o700 });
      try {
        mkdirSync(this.path(name), { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new MdockerError('CONFLICT', `network ${name} already exists`);
        }
        throw err;
      }
      let subnet: Cidr | null = null;
      let egress: EgressRecord | null = null;
      try {
        subnet = this.takeSubnet(opts.subnet);
        if (opts.egress) {
          const uplink = `mdu${randomHex(4)}`;
          egress = { uplink, ...egressAddresses(subnet), dns: hostNameservers() };
        }
        const record: NetworkRecord = {
          name,
          subnet: formatCidr(subnet),
          owner: opts.owner ? selfRef() : null,
          createdAt: new Date().toISOString(),
          egress,
        };
        // The record first: a crash after it leaves something for reap() to go by.
        this.writeRecord(record);
        mkdirSync(this.path(name, 'members'), { mode: 0o700 });
        writeFileSync(this.path(name, 'hosts'), hostsFile([]), { mode: 0o644 });
        const netns = this.path(name, 'netns');
        if (egress === null) {
          await askLauncher('network-create', netns);
        } else {
          const prefix = subnet.prefix;
          await askLauncher('network-create', netns, [
            '--gateway',
            `${egress.gateway}/${prefix}`,
            '--uplink',
            egress.uplink,
            '--uplink-host',
            `${egress.hostAddress}/30`,
            '--uplink-peer',
            `${egress.peerAddress}/30`,
          ]);
          const rules = egressRules(egress, formatCidr(this.range));
          await applyRules(rules.network, netns);
          await applyRules(rules.host);
        }
        return record;
      } catch (err) {
        if (egress !== null) {
          await askLauncher('network-remove', this.path(name, 'netns')).catch(() => undefined);
          await removeHostRules(egress.uplink).catch(() => undefined);
        }
        if (subnet) rmSync(this.subnetFile(subnet), { force: true });
        rmSync(this.path(name), { recursive: true, force: true });
        throw err;
      }
    });
  }

  private writeRecord(record: NetworkRecord): void {
    const file = this.path(record.name, 'network.json');
    const tmp = `${file}.${process.pid}.${(tmpCounter++).toString(36)}.tmp`;
    writeFileSync(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, file);
  }

  /** Reserves the subnet given, or the next free one of the range (a file created exclusively). */
  private takeSubnet(given: string | undefined): Cidr {
    const taken = (): Cidr[] => {
      try {
        return readdirSync(join(this.dir, 'subnets')).map((f) => {
          const [ip, prefix] = f.split('_');
          return { base: ipToNumber(ip ?? ''), prefix: Number(prefix) };
        });
      } catch {
        return [];
      }
    };
    for (let attempt = 0; attempt < 64; attempt++) {
      const all = taken();
      const cidr = given !== undefined ? parseCidr(given) : nextFreeSubnet(this.range, all);
      if (cidr === null) {
        throw new MdockerError('UNAVAILABLE', `no free subnet left in the network range ${formatCidr(this.range)}`);
      }
      const clash = all.find((t) => overlaps(t, cidr));
      if (clash && given !== undefined) {
        throw new MdockerError('CONFLICT', `subnet ${given} overlaps ${formatCidr(clash)}, another network's`);
      }
      try {
        writeFileSync(this.subnetFile(cidr), '', { flag: 'wx', mode: 0o600 });
        return cidr;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new MdockerError('UNAVAILABLE', 'could not reserve a subnet (too many at once)');
  }

  members(name: string): NetworkMember[] {
    let files: string[];
    try {
      files = readdirSync(this.path(name, 'members'));
    } catch {
      return [];
    }
    const members: NetworkMember[] = [];
    for (const file of files) {
      try {
        members.push(JSON.parse(readFileSync(join(this.path(name, 'members'), file), 'utf8')) as NetworkMember);
      } catch {
        // half written by a crashed runtime: its container is gone with it
      }
    }
    return members;
  }

  /** Reserves an address for the container and adds its names to the hosts file. */
  attach(name: string, container: { id: string; name: string; hostname: string }): Promise<NetworkAttachment> {
    return this.serial(name, async () => {
      const record = await this.get(name);
      if (record === null) throw new MdockerError('NOT_FOUND', `no such network: ${name}`);
      const subnet = parseCidr(record.subnet);
      const egress = record.egress ?? null;
      const { first, last } = memberAddresses(subnet, egress !== null);
      const members = this.members(name);
      const used = new Set(members.map((m) => m.ip));
      let stale = false;
      for (let n = first; n <= last; n++) {
        const ip = numberToIp(n);
        if (used.has(ip)) continue;
        const member: NetworkMember = { id: container.id, name: container.name, hostname: container.hostname, ip };
        try {
          writeFileSync(join(this.path(name, 'members'), ip), JSON.stringify(member), { flag: 'wx', mode: 0o600 });
        } catch (err) {
          // Another process's attach took it since the listing, so the listing is stale.
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            stale = true;
            continue;
          }
          throw err;
        }
        this.rewriteHosts(name, stale ? this.members(name) : [...members, member]);
        return {
          name,
          ip,
          address: `${ip}/${subnet.prefix}`,
          netnsPath: this.path(name, 'netns'),
          hostsPath: this.path(name, 'hosts'),
          gateway: egress?.gateway ?? null,
          dns: egress?.dns ?? [],
        };
      }
      throw new MdockerError('UNAVAILABLE', `network ${name} has no free address left (${record.subnet})`);
    });
  }

  /** Takes the container's address back and its names out of the hosts file. */
  detach(name: string, id: string): Promise<void> {
    return this.serial(name, async () => {
      const rest: NetworkMember[] = [];
      let changed = false;
      for (const member of this.members(name)) {
        if (member.id !== id) {
          rest.push(member);
          continue;
        }
        rmSync(join(this.path(name, 'members'), member.ip), { force: true });
        changed = true;
      }
      // With nobody left the file has no reader, and the next member's attach writes it.
      if (changed && rest.length > 0) this.rewriteHosts(name, rest);
    });
  }

  /**
   * In place, never a rename: each member's /etc/hosts is a bind mount of this inode, and
   * would keep showing a replaced file's old one. The new text is written over the old,
   * padded with empty lines to the old length, then the file is cut to the new length, so
   * a reader sees valid lines at every step (a truncate first would show an empty file),
   * and the file's blocks are rewritten rather than freed and allocated again (on ext4 a
   * tenth of the cost).
   */
  private rewriteHosts(name: string, members: NetworkMember[]): void {
    const text = Buffer.from(hostsFile(members));
    let fd: number;
    try {
      fd = openSync(this.path(name, 'hosts'), 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const oldLength = fstatSync(fd).size;
      const padded =
        oldLength > text.length ? Buffer.concat([text, Buffer.alloc(oldLength - text.length, 0x0a)]) : text;
      for (let offset = 0; offset < padded.length;)
        offset += writeSync(fd, padded, offset, padded.length - offset, offset);
      if (oldLength > text.length) ftruncateSync(fd, text.length);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Removes the network: its namespace's mount (the kernel then frees the bridge and the
   * veths once no member is left), its hosts file, its subnet. CONFLICT while a member
   * whose container `isLive` says is running remains, unless forced.
   */
  remove(name: string, opts: { force?: boolean; isLive?: (id: string) => boolean } = {}): Promise<void> {
    return this.serial(name, async () => {
      const record = await this.get(name);
      if (record === null && !this.exists(name)) throw new MdockerError('NOT_FOUND', `no such network: ${name}`);
      const live = this.members(name).filter((m) => opts.isLive?.(m.id) ?? true);
      if (live.length > 0 && !opts.force) {
        throw new MdockerError(
          'CONFLICT',
          `network ${name} is in use by ${live.length} container${live.length === 1 ? '' : 's'} (${live
            .map((m) => m.name)
            .slice(0, 5)
            .join(', ')}): remove them first`,
        );
      }
      await askLauncher('network-remove', this.path(name, 'netns'));
      if (record?.egress) await removeHostRules(record.egress.uplink);
      if (record !== null) {
        try {
          rmSync(this.subnetFile(parseCidr(record.subnet)), { force: true });
        } catch {
          // a hand-edited record: its subnet file stays
        }
      }
      rmSync(this.path(name), { recursive: true, force: true });
    });
  }

  private ageMs(name: string): number {
    try {
      return Date.now() - statSync(this.path(name)).mtimeMs;
    } catch {
      return 0;
    }
  }

  private exists(name: string): boolean {
    try {
      readdirSync(this.path(name));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * After a crash: members whose container is gone leave the hosts file; networks whose
   * owner is gone are removed (their containers, owned by the same process, were reaped
   * first). Returns the names removed.
   */
  async reap(isLive: (id: string) => boolean): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n !== 'subnets' && NAME_PATTERN.test(n));
    } catch {
      return removed;
    }
    for (const name of names) {
      const record = await this.get(name);
      for (const member of this.members(name)) if (!isLive(member.id)) await this.detach(name, member.id);
      // No record a minute after its directory (a create that crashed before writing it),
      // or an owner gone (a killed server's).
      const orphan =
        record === null ? this.ageMs(name) > ORPHAN_GRACE_MS : record.owner !== null && !isAlive(record.owner);
      if (!orphan) continue;
      try {
        await this.remove(name, { force: true });
        removed.push(name);
      } catch {
        // the next reap tries again
      }
    }
    return removed;
  }

  /** Removes the network once no member is left (a session's, after its last container). */
  async removeIfEmpty(name: string): Promise<boolean> {
    if (this.members(name).length > 0 || (await this.get(name)) === null) return false;
    try {
      await this.remove(name, { isLive: () => true });
      return true;
    } catch (err) {
      if (err instanceof MdockerError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND')) return false;
      throw err;
    }
  }
}
