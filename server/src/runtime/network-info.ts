/**
 * A running container's network as it sees it (its interfaces, IPv4 addresses and
 * routes) and, for eth0, the host's end of the pair: the veth on the network's bridge,
 * in the network's own namespace.
 *
 * Read by `mdocker-init netinfo` (native/src/launcher/netinfo.c), rtnetlink dumps in a
 * short-lived process that setns()es into each namespace. /proc/<pid>/net/{dev,route}
 * would give the container's counters and routes without a process, but no MAC, MTU,
 * link state or veth peer, and the network's namespace has no process whose /proc could
 * show it; setns() on one of the server's own threads would move a thread Node or libuv
 * may use for anything else into a namespace the container controls.
 */
import { z } from 'zod';
import type { InspectNetworkJson, NetInterfaceJson, NetPeerJson, NetRouteJson } from '../protocol/index.js';
import { MdockerError, launcherError } from './errors.js';
import { isAlive, launcherPath, type ProcessRef } from './native.js';
import { runHelper } from './helper.js';

const NETINFO_TIMEOUT_MS = 5_000;
/** The launcher caps what it prints (64 links, 256 addresses and routes per namespace). */
const NETINFO_MAX_OUTPUT_BYTES = 1024 * 1024;

const counter = z.number().int().nonnegative();
const optionalIndex = z.number().int().nullable();

const linkSchema = z.object({
  index: z.number().int().positive(),
  name: z.string(),
  kind: z.string().nullable(),
  flags: z.number().int().nonnegative(),
  mtu: z.number().int().nonnegative(),
  operstate: z.number().int().nonnegative(),
  mac: z.string().nullable(),
  master: optionalIndex,
  link: optionalIndex,
  linkNetnsid: optionalIndex,
  rxBytes: counter,
  rxPackets: counter,
  txBytes: counter,
  txPackets: counter,
});

const namespaceSchema = z.object({
  links: z.array(linkSchema),
  addresses: z.array(
    z.object({ index: z.number().int(), address: z.string(), prefix: z.number().int(), scope: z.number().int() }),
  ),
  routes: z.array(
    z.object({
      destination: z.string(),
      prefix: z.number().int(),
      gateway: z.string().nullable(),
      source: z.string().nullable(),
      oif: optionalIndex,
      metric: optionalIndex,
      scope: z.number().int(),
      protocol: z.number().int(),
      type: z.number().int(),
    }),
  ),
  truncated: z.boolean(),
});

export type NetnsDump = z.infer<typeof namespaceSchema>;
type LinkDump = z.infer<typeof linkSchema>;

/** include/uapi/linux/if.h: IFF_UP */
const IFF_UP = 0x1;
/** RFC 2863 operational states, as IFLA_OPERSTATE numbers them (include/uapi/linux/if.h). */
const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];
/** include/uapi/linux/rtnetlink.h: rt_scope_t */
const SCOPES: Record<number, string> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
/** include/uapi/linux/rtnetlink.h: RTPROT_* */
const PROTOCOLS: Record<number, string> = { 2: 'kernel', 3: 'boot', 4: 'static', 16: 'dhcp' };
/** include/uapi/linux/rtnetlink.h: RTN_*, the route types other than unicast, as `ip route` prefixes them */
const ROUTE_TYPES: Record<number, string> = {
  2: 'local',
  3: 'broadcast',
  4: 'anycast',
  5: 'multicast',
  6: 'blackhole',
  7: 'unreachable',
  8: 'prohibit',
  9: 'throw',
};

function linkJson(link: LinkDump): Omit<NetInterfaceJson, 'addresses'> {
  return {
    index: link.index,
    name: link.name,
    kind: link.kind,
    mac: link.mac,
    mtu: link.mtu,
    up: (link.flags & IFF_UP) !== 0,
    operState: OPER_STATES[link.operstate] ?? String(link.operstate),
    rxBytes: link.rxBytes,
    rxPackets: link.rxPackets,
    txBytes: link.txBytes,
    txPackets: link.txPackets,
  };
}

/** The container's side: each interface with its addresses, and the routes by device name. */
export function containerSide(dump: NetnsDump): { interfaces: NetInterfaceJson[]; routes: NetRouteJson[] } {
  const names = new Map(dump.links.map((link) => [link.index, link.name]));
  const interfaces = dump.links
    .map((link) => ({
      ...linkJson(link),
      addresses: dump.addresses
        .filter((a) => a.index === link.index)
        .map((a) => ({ address: a.address, prefix: a.prefix, scope: SCOPES[a.scope] ?? String(a.scope) })),
    }))
    .sort((a, b) => a.index - b.index);
  const routes = dump.routes.map((r) => {
    const destination = r.prefix === 0 ? 'default' : `${r.destination}/${r.prefix}`;
    const type = ROUTE_TYPES[r.type];
    return {
      destination: type === undefined ? destination : `${type} ${destination}`,
      gateway: r.gateway,
      device: r.oif === null ? null : (names.get(r.oif) ?? String(r.oif)),
      source: r.source,
      scope: SCOPES[r.scope] ?? String(r.scope),
      protocol: PROTOCOLS[r.protocol] ?? String(r.protocol),
    };
  });
  return { interfaces, routes };
}

/**
 * The host's end of the container's eth0 in the network's namespace: the link whose
 * index is eth0's IFLA_LINK (its peer's index, in the peer's namespace) and whose own
 * IFLA_LINK is eth0's index, so that neither side's numbering alone decides.
 */
export function peerSide(container: NetnsDump, network: NetnsDump, device = 'eth0'): NetPeerJson | null {
  const inside = container.links.find((link) => link.name === device);
  if (!inside || inside.link === null) return null;
  const peer = network.links.find((link) => link.index === inside.link && link.link === inside.index);
  if (!peer) return null;
  const master = peer.master === null ? null : (network.links.find((link) => link.index === peer.master)?.name ?? null);
  return { ...linkJson(peer), master, peerOf: device };
}

/** Runs `mdocker-init netinfo` on each path (a /proc/<pid>/ns/net or a network's nsfs mount). */
export async function dumpNetworkNamespaces(paths: string[]): Promise<NetnsDump[]> {
  const { code, stdout, stderr } = await runHelper(launcherPath, ['netinfo', ...paths], {
    timeoutMs: NETINFO_TIMEOUT_MS,
    maxBuffer: NETINFO_MAX_OUTPUT_BYTES,
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new MdockerError(
      'RUNTIME',
      `mdocker-init netinfo failed: ${stdout.trim() || stderr.trim() || `exit ${code}`}`,
    );
  }
  if (code !== 0) {
    const failure = z
      .object({
        code: z.string(),
        message: z.string(),
        errno: z.number().optional(),
        syscall: z.string().optional(),
      })
      .safeParse(parsed);
    throw failure.success
      ? launcherError(failure.data, 'mdocker-init netinfo')
      : new MdockerError('RUNTIME', `mdocker-init netinfo failed: exit ${code}`);
  }
  const dumps = z.array(namespaceSchema).length(paths.length).safeParse(parsed);
  if (!dumps.success) {
    throw new MdockerError('RUNTIME', `mdocker-init netinfo answered unexpectedly: ${dumps.error.message}`);
  }
  return dumps.data;
}

/**
 * The network of a running container: its own namespace through its init's
 * /proc/<pid>/ns/net, and eth0's peer in `networkNetnsPath` (null for a container with
 * only lo). CONFLICT when the init is gone: the start time, checked after the read,
 * proves the pid was still the init's when its namespace was opened (a pid is reused
 * only after its process is gone).
 */
export async function readContainerNetwork(options: {
  init: ProcessRef;
  network: { name: string; netnsPath: string } | null;
}): Promise<InspectNetworkJson> {
  const paths = [`/proc/${options.init.pid}/ns/net`];
  if (options.network) paths.push(options.network.netnsPath);
  const dumps = await dumpNetworkNamespaces(paths);
  if (!isAlive(options.init)) throw new MdockerError('CONFLICT', 'the container is not running');
  const [inside, network] = dumps as [NetnsDump, NetnsDump | undefined];
  const { interfaces, routes } = containerSide(inside);
  return {
    name: options.network?.name ?? null,
    interfaces,
    routes,
    peer: network ? peerSide(inside, network) : null,
    truncated: inside.truncated,
  };
}
